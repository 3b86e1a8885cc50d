"""Manual matches: pick open records of both sides of a job, see the running difference,
match them (a difference needs a write-off reason).

``pick`` (exception ids, e.g. a break and its counterpart from the queue) arrives
ticked at the top of its side's list, wherever it would be in the list otherwise.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import marshmallow as ma
from flask import request

from recon.auth.guard import current_actor, current_project
from recon.errors import APIError, ValidationError
from recon.fields import Id
from recon.projects.settings import project_settings
from recon.review.listing import get_exceptions
from recon.review.manual import (
    create_manual_match,
    get_balance,
    get_manual_match,
    get_manual_matches,
    undo_manual_match,
)
from recon.review.schemas import ManualMatchCreateSchema
from recon.workspace.blueprint import bp
from recon.workspace.forms import field_errors, load
from recon.workspace.render import STANDALONE, page
from recon.workspace.views.common import cache, session, storage
from recon.workspace.views.exceptions import member_names

LIST_LIMIT = 200  # open records a side on the page; the search narrows them
MADE_LIMIT = 20  # the latest manual matches on the job's sources, to check or undo


class MatchArgsSchema(ma.Schema):
    q = ma.fields.String(load_default=None, validate=ma.validate.Length(max=200))
    pick = ma.fields.List(Id(), load_default=list, validate=ma.validate.Length(max=100))


def _lists(jid: int, q: str | None, pick: list[int]) -> dict[str, Any]:
    """Each side's open records; the picked exceptions of the job first, wherever they are."""
    common: dict[str, Any] = {"job": jid, "unresolved": True}
    picked = (
        get_exceptions(session=session(), project=current_project(), ids=pick, **common).items
        if pick
        else []
    )
    sides = {}
    for side in ("left", "right"):
        found = get_exceptions(
            session=session(),
            project=current_project(),
            side=side,
            q=q,
            per_page=LIST_LIMIT,
            # Each list says how many records it holds, up to TOTAL_CAP ("10000+ open"):
            # an exact count of a large job's side is most of the page's time.
            **common,
        )
        first = [x for x in picked if x.side == side]
        seen = {x.id for x in first}
        sides[side] = replace(found, items=first + [x for x in found.items if x.id not in seen])
    return {"sides": sides, "picked": picked}


def _balance_context(jid: int, left: list[int], right: list[int]) -> dict[str, Any]:
    context: dict[str, Any] = {"picked": len(left) + len(right)}
    if left or right:
        try:
            context["balance"] = get_balance(
                session=session(),
                storage=storage(),
                project=current_project(),
                job_id=jid,
                left_rows=left,
                right_rows=right,
            )
        except ValidationError as error:
            context["error"] = error
    return context


def _match_page(jid: int, status: int = 200, **extra: Any) -> Any:
    args = load(MatchArgsSchema(), request.values)
    lists = _lists(jid, args["q"], args["pick"])
    # Ticked: what the form sent back (a refused match keeps its choice), else what was picked.
    ticked = {
        side: {int(v) for v in request.form.getlist(f"{side}_rows") if v.isdigit()}
        if request.method == "POST"
        else {x.row for x in lists["picked"] if x.side == side}
        for side in ("left", "right")
    }
    context = {}
    if lists["picked"] and request.method == "GET":
        context = _balance_context(jid, sorted(ticked["left"]), sorted(ticked["right"]))
    made = get_manual_matches(
        session=session(), project=current_project(), job_id=jid, per_page=MADE_LIMIT
    )
    return page(
        "workspace/manual.html",
        "workspace/_manual_lists.html",
        status=status,
        job_id=jid,
        matches=made,
        names=member_names(),
        sides=lists["sides"],
        ticked=set() if "made" in extra else ticked,
        pick=args["pick"],
        q=args["q"] or "",
        reasons=project_settings(current_project()).reason_codes,
        **context,
        **extra,
    )


@bp.route("/projects/<id:pid>/jobs/<id:jid>/match", endpoint="manual")
def manual(pid: int, jid: int) -> Any:
    """Pick open records of both sides of a job to match them by hand."""
    return _match_page(jid)


def _rows(field: str) -> list[int]:
    values = request.form.getlist(field)
    if not all(v.isdigit() and len(v) < 19 for v in values):
        raise ValidationError(
            "Pick records from the lists.", errors=[{"field": field, "message": "Not a record."}]
        )
    return [int(v) for v in values]


@bp.route("/projects/<id:pid>/jobs/<id:jid>/match/balance", methods=["POST"], endpoint="balance")
def balance(pid: int, jid: int) -> Any:
    """The running difference of the records picked so far."""
    context = _balance_context(jid, _rows("left_rows"), _rows("right_rows"))
    reasons = project_settings(current_project()).reason_codes
    return page(STANDALONE, "workspace/_balance.html", job_id=jid, reasons=reasons, **context)


@bp.route("/projects/<id:pid>/jobs/<id:jid>/match", methods=["POST"], endpoint="manual_send")
def manual_send(pid: int, jid: int) -> Any:
    """Match the picked records; a difference needs a write-off reason."""
    try:
        data = load(ManualMatchCreateSchema(), request.form)
        made = create_manual_match(
            session=session(),
            storage=storage(),
            project=current_project(),
            job_id=jid,
            actor=current_actor(),
            cache=cache(),
            **data,
        )
    except APIError as error:
        errors = field_errors(error) if isinstance(error, ValidationError) else {}
        return _match_page(jid, status=error.status, error=error, errors=errors)
    return _match_page(jid, made=made)


@bp.route(
    "/projects/<id:pid>/jobs/<id:jid>/manual-matches/<id:mid>/undo",
    methods=["POST"],
    endpoint="manual_undo",
)
def undo(pid: int, jid: int, mid: int) -> Any:
    """Undo a manual match: its records are exceptions to work again, back in the lists."""
    try:
        undone = undo_manual_match(
            session=session(),
            project=current_project(),
            match=get_manual_match(session=session(), project=current_project(), match_id=mid),
            actor=current_actor(),
            cache=cache(),
        )
    except APIError as error:
        return _match_page(jid, status=error.status, error=error)
    return _match_page(jid, undone=undone)
