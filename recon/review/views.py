from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask import Response, current_app
from flask.views import MethodView
from flask_smorest import Blueprint

from recon.auth.guard import current_actor, current_project
from recon.extensions import db
from recon.pagination import PageArgsSchema
from recon.review.approvals import decide_approval, get_approvals
from recon.review.bulk import bulk_update
from recon.review.export import documented_download, download
from recon.review.list_exports import download_list, export_approvals, export_queue
from recon.review.listing import get_exception, get_exceptions
from recon.review.manual import (
    create_manual_match,
    get_manual_match,
    get_manual_matches,
    undo_manual_match,
)
from recon.review.schemas import (
    ApprovalArgsSchema,
    ApprovalDecisionSchema,
    ApprovalExportArgsSchema,
    ApprovalPageSchema,
    ApprovalSchema,
    BulkResultSchema,
    BulkSchema,
    CommentCreateSchema,
    CommentPageSchema,
    CommentSchema,
    ExceptionArgsSchema,
    ExceptionExportArgsSchema,
    ExceptionPageSchema,
    ExceptionSchema,
    ExceptionUpdateSchema,
    ManualMatchArgsSchema,
    ManualMatchCreateSchema,
    ManualMatchPageSchema,
    ManualMatchSchema,
)
from recon.review.service import add_comment, decide_suggestion, get_comments, update_exception

blp = Blueprint(
    "review",
    __name__,
    url_prefix="/api/projects/<int:pid>",
    description="Exceptions of finished jobs: assign, comment, resolve, match by hand",
)


class SuggestionSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(ExceptionSchema))


def _cache() -> Any:
    return current_app.extensions["recon_cache"]


def _exception(eid: int) -> Any:
    return get_exception(session=db.session, project=current_project(), exception_id=eid)


@blp.route("/exceptions/export", methods=["GET"])
@blp.arguments(ExceptionExportArgsSchema, location="query")
@documented_download(blp)
def exceptions_export(args: dict[str, Any], pid: int) -> Response:
    """Stream the exceptions list as CSV or XLSX (formula-safe), every page of it, with the
    list's filters and sort: id, job, side, row, kind, status, the record's fields,
    assignee, reason, note, opened/resolved and age in days."""
    return download_list(
        export_queue,
        session=db.session,
        storage=current_app.extensions["recon_storage"],
        project=current_project(),
        args=args,
    )


@blp.route("/exceptions")
class Exceptions(MethodView):
    @blp.arguments(ExceptionArgsSchema, location="query")
    @blp.response(200, ExceptionPageSchema)
    def get(self, args: dict[str, Any], pid: int) -> Any:
        """List the project's exceptions, oldest first, filtered by status, kind, side, job,
        assignee, age in days and text (key, description, note)."""
        return get_exceptions(session=db.session, project=current_project(), **args)


@blp.route("/exceptions/bulk", methods=["POST"])
@blp.arguments(BulkSchema)
@blp.response(200, BulkResultSchema)
def bulk(data: dict[str, Any], pid: int) -> Any:
    """Assign, resolve, close or reopen every exception matching a filter (those whose
    status allows the action; the others are counted as skipped)."""
    return bulk_update(
        session=db.session,
        project=current_project(),
        filters=data["filter"],
        action=data["action"],
        assignee_id=data["assignee_id"],
        reason_code=data["reason_code"],
        note=data["note"],
        actor=current_actor(),
        cache=_cache(),
    )


@blp.route("/exceptions/<int:eid>")
class ExceptionById(MethodView):
    @blp.response(200, ExceptionSchema)
    def get(self, pid: int, eid: int) -> Any:
        """Read an exception with its counterpart and differences."""
        return _exception(eid)

    @blp.arguments(ExceptionUpdateSchema)
    @blp.response(200, ExceptionSchema)
    def patch(self, changes: dict[str, Any], pid: int, eid: int) -> Any:
        """Assign (assignee_id), resolve (status resolved + reason_code), close, reopen or
        annotate (note). A transition the status does not allow is 409."""
        return update_exception(
            session=db.session,
            project=current_project(),
            exception=_exception(eid),
            changes=changes,
            actor=current_actor(),
            cache=_cache(),
        )


@blp.route("/exceptions/<int:eid>/comments")
class Comments(MethodView):
    @blp.arguments(PageArgsSchema, location="query")
    @blp.response(200, CommentPageSchema)
    def get(self, args: dict[str, Any], pid: int, eid: int) -> Any:
        """List the exception's comments, oldest first."""
        return get_comments(session=db.session, exception=_exception(eid), **args)

    @blp.arguments(CommentCreateSchema)
    @blp.response(201, CommentSchema)
    def post(self, data: dict[str, Any], pid: int, eid: int) -> Any:
        """Comment on an exception."""
        return add_comment(
            session=db.session,
            exception=_exception(eid),
            body=data["body"],
            actor=current_actor(),
        )


@blp.route("/exceptions/<int:eid>/accept", methods=["POST"])
@blp.response(200, SuggestionSchema)
def accept(pid: int, eid: int) -> Any:
    """Accept a suggested match: every exception of the suggestion is resolved."""
    return _decide(eid, accept=True)


@blp.route("/exceptions/<int:eid>/reject", methods=["POST"])
@blp.response(200, SuggestionSchema)
def reject(pid: int, eid: int) -> Any:
    """Reject a suggested match: its exceptions become unmatched records to work."""
    return _decide(eid, accept=False)


def _decide(eid: int, *, accept: bool) -> dict[str, Any]:
    items = decide_suggestion(
        session=db.session,
        project=current_project(),
        exception=_exception(eid),
        accept=accept,
        actor=current_actor(),
        cache=_cache(),
    )
    return {"items": items}


@blp.route("/jobs/<int:jid>/manual-matches")
class ManualMatches(MethodView):
    @blp.arguments(ManualMatchArgsSchema, location="query")
    @blp.response(200, ManualMatchPageSchema)
    def get(self, args: dict[str, Any], pid: int, jid: int) -> Any:
        """List the manual matches made on the job's sources pair, newest first."""
        return get_manual_matches(session=db.session, project=current_project(), job_id=jid, **args)

    @blp.arguments(ManualMatchCreateSchema)
    @blp.response(201, ManualMatchSchema)
    def post(self, data: dict[str, Any], pid: int, jid: int) -> Any:
        """Match open exceptions of both sides by hand. The amounts (read from the sources)
        must balance within ``tolerance``, or a ``write_off_reason`` is required (422); a
        write-off that needs approval leaves the match ``pending_approval``."""
        return create_manual_match(
            session=db.session,
            storage=current_app.extensions["recon_storage"],
            project=current_project(),
            job_id=jid,
            actor=current_actor(),
            cache=_cache(),
            **data,
        )


@blp.route("/manual-matches/<int:mid>")
class ManualMatchById(MethodView):
    @blp.response(200, ManualMatchSchema)
    def get(self, pid: int, mid: int) -> Any:
        """Read a manual match: its records, difference, write-off and status."""
        return get_manual_match(session=db.session, project=current_project(), match_id=mid)

    @blp.response(200, ManualMatchSchema)
    def delete(self, pid: int, mid: int) -> Any:
        """Undo a manual match: its records become exceptions to work again (audited)."""
        match = get_manual_match(session=db.session, project=current_project(), match_id=mid)
        return undo_manual_match(
            session=db.session,
            project=current_project(),
            match=match,
            actor=current_actor(),
            cache=_cache(),
        )


@blp.route("/approvals", methods=["GET"])
@blp.arguments(ApprovalArgsSchema, location="query")
@blp.response(200, ApprovalPageSchema)
def approvals(args: dict[str, Any], pid: int) -> Any:
    """List write-offs waiting for (or decided by) a second person; ?status=pending."""
    status = args.pop("status")
    return get_approvals(
        session=db.session,
        project=current_project(),
        status=status.value if status else None,
        **args,
    )


@blp.route("/approvals/export", methods=["GET"])
@blp.arguments(ApprovalExportArgsSchema, location="query")
@documented_download(blp)
def approvals_export(args: dict[str, Any], pid: int) -> Response:
    """Stream the project's approvals as CSV or XLSX (formula-safe), oldest first;
    ``?status=pending`` as on the list."""
    status = args["status"]
    return download(
        export_approvals(
            session=db.session,
            storage=current_app.extensions["recon_storage"],
            project=current_project(),
            fmt=args["format"],
            status=status.value if status else None,
        )
    )


@blp.route("/approvals/<int:aid>/approve", methods=["POST"])
@blp.arguments(ApprovalDecisionSchema)
@blp.response(200, ApprovalSchema)
def approve(data: dict[str, Any], pid: int, aid: int) -> Any:
    """Approve a write-off (another editor or owner than its maker: 403 for the maker)."""
    return _approval(aid, data, approve=True)


@blp.route("/approvals/<int:aid>/reject", methods=["POST"])
@blp.arguments(ApprovalDecisionSchema)
@blp.response(200, ApprovalSchema)
def reject_approval(data: dict[str, Any], pid: int, aid: int) -> Any:
    """Reject a write-off: its records return to the exceptions (403 for the maker)."""
    return _approval(aid, data, approve=False)


def _approval(aid: int, data: dict[str, Any], *, approve: bool) -> dict[str, Any]:
    return decide_approval(
        session=db.session,
        project=current_project(),
        approval_id=aid,
        approve=approve,
        actor=current_actor(),
        note=data["note"],
        cache=_cache(),
    )
