"""Approvals: the write-offs waiting for a second person, decided from the page.

A pending item made by someone else can be approved or rejected with a note; the
maker sees their own as waiting (the service refuses them with 403 anyway).
"""

from __future__ import annotations

from typing import Any

from flask import Response, request
from werkzeug.datastructures import MultiDict

from recon.auth.guard import current_actor, current_project, current_user
from recon.errors import APIError
from recon.review.approvals import decide_approval, get_approvals
from recon.review.export import download
from recon.review.list_exports import export_approvals
from recon.review.schemas import (
    ApprovalArgsSchema,
    ApprovalDecisionSchema,
    ApprovalExportArgsSchema,
)
from recon.workspace.blueprint import bp
from recon.workspace.forms import load
from recon.workspace.render import page
from recon.workspace.views.common import cache, session, storage
from recon.workspace.views.exceptions import member_names

DEFAULT: MultiDict[str, str] = MultiDict({"status": "pending"})


def _approvals_page(status: int = 200, **extra: Any) -> Any:
    args = load(ApprovalArgsSchema(), request.args if request.args else DEFAULT)
    state = args.pop("status")
    found = get_approvals(
        session=session(),
        project=current_project(),
        status=state.value if state else None,
        **args,
    )
    me = current_user()
    return page(
        "workspace/approvals.html",
        "workspace/_approvals_table.html",
        status=status,
        found=found,
        state=state.value if state else "",
        mine=sum(1 for a in found.items if a["maker_id"] == me.id),
        names=member_names(),
        me=me,
        query={k: v for k, v in request.args.items() if k != "page" and v},
        **extra,
    )


@bp.route("/projects/<id:pid>/approvals/export", endpoint="approvals_export")
def approvals_export(pid: int) -> Response:
    """The approvals shown (``?status=``, all when blank) as CSV or XLSX (the API's export)."""
    args = load(ApprovalExportArgsSchema(), request.args)
    return download(
        export_approvals(
            session=session(),
            storage=storage(),
            project=current_project(),
            fmt=args["format"],
            status=args["status"].value if args["status"] else None,
        )
    )


@bp.route("/projects/<id:pid>/approvals", endpoint="approvals")
def approvals(pid: int) -> Any:
    """The project's approvals, pending ones first to decide (``?status=`` for the others)."""
    return _approvals_page()


@bp.route(
    "/projects/<id:pid>/approvals/<id:aid>/<any(approve,reject):verdict>",
    methods=["POST"],
    endpoint="decide_approval",
)
def decide(pid: int, aid: int, verdict: str) -> Any:
    """Approve or reject a write-off someone else made; the list is shown again."""
    data = load(ApprovalDecisionSchema(), request.form)
    try:
        decided = decide_approval(
            session=session(),
            project=current_project(),
            approval_id=aid,
            approve=verdict == "approve",
            actor=current_actor(),
            note=data["note"],
            cache=cache(),
        )
    except APIError as error:
        return _approvals_page(status=error.status, error=error)
    return _approvals_page(decided=decided)
