"""The exception queue: filters and sorting, a record beside its counterpart, assign to me,
resolve, comments, accept or reject suggestions one by one or in bulk, and the next item
selected after each action; manual matches of a job's records with the running difference.

Every action form carries ``back`` (the queue's query string) and ``i`` (the position of
the item acted on), so the answer can show the same queue with the next item selected.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlencode

import marshmallow as ma
from flask import Response, request
from werkzeug.datastructures import MultiDict

from recon.audit.service import get_events
from recon.auth.guard import current_actor, current_project, current_user
from recon.jobs.compare import differing_fields
from recon.projects.service import get_members
from recon.projects.settings import project_settings
from recon.review.bulk import bulk_update
from recon.review.list_exports import download_list, export_queue
from recon.review.listing import SORTS, get_counterparts, get_exception, get_exceptions
from recon.review.models import ExceptionKind, ExceptionStatus, ReconException
from recon.review.schemas import (
    CommentCreateSchema,
    ExceptionArgsSchema,
    ExceptionExportArgsSchema,
    ExceptionFilterSchema,
)
from recon.review.service import add_comment, decide_suggestion, get_comments, update_exception
from recon.workspace.blueprint import bp
from recon.workspace.forms import load
from recon.workspace.render import STANDALONE, page
from recon.workspace.views.common import cache, session, storage

DEFAULT_QUEUE = {"unresolved": "true"}
QUEUE_PAGE = 25
SCOPES = ("selected", "all")
# The queue's filters a bulk action over "all" applies (its paging and sort do not matter).
FILTERS = tuple(name for name in ExceptionFilterSchema().fields if name != "ids")


class ResolveSchema(ma.Schema):
    reason_code = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=64))
    note = ma.fields.String(load_default=None, validate=ma.validate.Length(max=10_000))


class BulkFormSchema(ma.Schema):
    # "selected": the ticked ids; "all": every exception matching the queue's filters
    # (``back``), on every page, as the API's bulk endpoint takes a filter.
    scope = ma.fields.String(load_default="selected", validate=ma.validate.OneOf(SCOPES))
    ids = ma.fields.List(
        ma.fields.Integer(), load_default=list, validate=ma.validate.Length(max=1000)
    )
    action = ma.fields.String(
        required=True, validate=ma.validate.OneOf(("accept", "reject", "assign", "resolve"))
    )
    reason_code = ma.fields.String(load_default=None, validate=ma.validate.Length(min=1, max=64))

    @ma.validates_schema
    def _something_chosen(self, data: dict[str, Any], **_: Any) -> None:
        if data.get("scope", "selected") == "selected" and not data.get("ids"):
            raise ma.ValidationError(
                "Select at least one exception, or choose every exception matching the filter.",
                field_name="ids",
            )


def _queue_args(query: str | None) -> tuple[dict[str, Any], str]:
    """The queue's filters from a query string (the default queue when there is none)."""
    # Blank values count: "all" (unresolved=) with no other filter is not the default queue.
    pairs = [(k, v) for k, v in parse_qsl(query or "", keep_blank_values=True) if k != "i"]
    pairs = pairs or list(DEFAULT_QUEUE.items())
    args = load(ExceptionArgsSchema(), MultiDict(pairs))
    args["per_page"] = (
        min(args["per_page"], QUEUE_PAGE) if "per_page" in dict(pairs) else QUEUE_PAGE
    )
    args["count"] = "exact"  # the queue shows "N in all" and its last page number
    return args, urlencode(pairs)


def member_names() -> dict[int, str]:
    """The project's members by id: their usernames."""
    return {
        m.user_id: m.user.username
        for m in get_members(session=session(), project=current_project())
    }


def _fields(exception: ReconException) -> dict[str, Any]:
    return {
        "key": exception.key,
        "amount": exception.amount,
        "date": exception.date,
        "currency": exception.currency,
        "description": exception.description,
    }


def _detail(exception: ReconException | None) -> dict[str, Any]:
    if exception is None:
        return {"exception": None}
    # The other side's own exceptions carry every field (the stored counterpart list has no
    # description); the list is the fallback when they are gone.
    others = get_counterparts(session=session(), exception=exception)
    counterpart = [_fields(o) | {"side": o.side, "row": o.row, "id": o.id} for o in others] or (
        exception.counterpart or []
    )
    mine = _fields(exception)
    differ = set((exception.diff or {}).get("fields") or []) | differing_fields(mine, counterpart)
    return {
        "exception": exception,
        "counterpart": counterpart,
        "differ": differ,
        "comments": get_comments(session=session(), exception=exception, per_page=100).items,
        "events": get_events(
            session=session(),
            project_id=exception.project_id,
            object_type="exception",
            object_id=str(exception.id),
            per_page=20,
        ).items,
    }


def _workbench(
    query: str | None, index: int = 0, acted: int | None = None, status: int = 200, **extra: Any
) -> Any:
    """The queue with one item selected: the one at ``index``, or the one after it when the
    item acted on (``acted``) is still there (it still matches the filters)."""
    args, back = _queue_args(query)
    queue = get_exceptions(session=session(), project=current_project(), **args)
    items = queue.items
    if items and acted is not None and index < len(items) and items[index].id == acted:
        index += 1
    index = max(0, min(index, len(items) - 1)) if items else 0
    selected = items[index] if items else None
    return page(
        "workspace/exceptions.html",
        "workspace/_workbench.html",
        status=status,
        queue=queue,
        args=args,
        back=back,
        query={k: v for k, v in parse_qsl(back, keep_blank_values=True) if k != "page"},
        index=index,
        names=member_names(),
        me=current_user(),
        reasons=project_settings(current_project()).reason_codes,
        sorts=SORTS,
        kinds=[k.value for k in ExceptionKind],
        statuses=[s.value for s in ExceptionStatus],
        **_detail(selected),
        **extra,
    )


@bp.route("/projects/<id:pid>/exceptions", endpoint="exceptions")
def queue(pid: int) -> Any:
    """The queue, filtered and sorted, with its first item (or ``?i=``) selected."""
    index = request.args.get("i", "0")
    return _workbench(request.query_string.decode(), int(index) if index.isdigit() else 0)


@bp.route("/projects/<id:pid>/exceptions/export", endpoint="queue_export")
def queue_export(pid: int) -> Response:
    """The queue as CSV or XLSX, every page, with its filters and sort (the API's export)."""
    args = load(ExceptionExportArgsSchema(), request.args or MultiDict(DEFAULT_QUEUE))
    return download_list(
        export_queue, session=session(), storage=storage(), project=current_project(), args=args
    )


@bp.route("/projects/<id:pid>/exceptions/<id:eid>", endpoint="exception")
def detail(pid: int, eid: int) -> Any:
    """One exception beside its counterpart, with its actions, comments and audit trail."""
    found = get_exception(session=session(), project=current_project(), exception_id=eid)
    back = request.args.get("back", "")
    index = request.args.get("i", "0")
    return page(
        STANDALONE,
        "workspace/_exception.html",
        back=back,
        index=int(index) if index.isdigit() else 0,
        names=member_names(),
        me=current_user(),
        reasons=project_settings(current_project()).reason_codes,
        **_detail(found),
    )


def _acted(eid: int) -> Any:
    index = request.form.get("i", "0")
    return _workbench(request.form.get("back"), int(index) if index.isdigit() else 0, acted=eid)


def _exception(eid: int) -> ReconException:
    return get_exception(session=session(), project=current_project(), exception_id=eid)


@bp.route("/projects/<id:pid>/exceptions/<id:eid>/assign", methods=["POST"], endpoint="assign")
def assign(pid: int, eid: int) -> Any:
    """Assign the exception to me; the next item is selected."""
    update_exception(
        session=session(),
        project=current_project(),
        exception=_exception(eid),
        changes={"assignee_id": current_user().id},
        actor=current_actor(),
        cache=cache(),
    )
    return _acted(eid)


@bp.route("/projects/<id:pid>/exceptions/<id:eid>/resolve", methods=["POST"], endpoint="resolve")
def resolve(pid: int, eid: int) -> Any:
    """Resolve the exception with a reason code and a note; the next item is selected."""
    data = load(ResolveSchema(), request.form)
    update_exception(
        session=session(),
        project=current_project(),
        exception=_exception(eid),
        changes={"status": "resolved", **data},
        actor=current_actor(),
        cache=cache(),
    )
    return _acted(eid)


@bp.route(
    "/projects/<id:pid>/exceptions/<id:eid>/<any(accept,reject):decision>",
    methods=["POST"],
    endpoint="decide",
)
def decide(pid: int, eid: int, decision: str) -> Any:
    """Accept or reject a suggested match; the next item is selected."""
    decide_suggestion(
        session=session(),
        project=current_project(),
        exception=_exception(eid),
        accept=decision == "accept",
        actor=current_actor(),
        cache=cache(),
    )
    return _acted(eid)


@bp.route("/projects/<id:pid>/exceptions/<id:eid>/comments", methods=["POST"], endpoint="comment")
def comment(pid: int, eid: int) -> Any:
    """Add a comment; the same item stays selected."""
    data = load(CommentCreateSchema(), request.form)
    found = _exception(eid)
    add_comment(session=session(), exception=found, body=data["body"], actor=current_actor())
    index = request.form.get("i", "0")
    return page(
        STANDALONE,
        "workspace/_exception.html",
        back=request.form.get("back", ""),
        index=int(index) if index.isdigit() else 0,
        names=member_names(),
        me=current_user(),
        reasons=project_settings(current_project()).reason_codes,
        **_detail(found),
    )


@bp.route("/projects/<id:pid>/exceptions/bulk", methods=["POST"], endpoint="bulk")
def bulk(pid: int) -> Any:
    """Accept, reject, assign to me or resolve the selected exceptions, or every exception
    matching the queue's filters."""
    data = load(BulkFormSchema(), request.form)
    filters: dict[str, Any] = {"ids": data["ids"]}
    if data["scope"] == "all":
        args, _ = _queue_args(request.form.get("back"))
        filters = {k: args[k] for k in FILTERS if args.get(k) is not None}
    result = bulk_update(
        session=session(),
        project=current_project(),
        filters=filters,
        action=data["action"],
        assignee_id=current_user().id if data["action"] == "assign" else None,
        reason_code=data["reason_code"],
        actor=current_actor(),
        cache=cache(),
    )
    return _workbench(request.form.get("back"), 0, done=result, done_action=data["action"])
