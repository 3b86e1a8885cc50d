"""Exports of a project's lists, every page, streamed as CSV or XLSX (recon.review.export's
writers, formula-safe): the exceptions list with its filters and sort, the audit log, the
approvals."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from flask import Response
from sqlalchemy import or_, select

from recon.audit.service import events_query
from recon.db_types import SessionLike
from recon.projects.models import Project
from recon.review.approvals import approvals_of
from recon.review.export import (
    BATCH,
    MIMETYPES,
    Export,
    batched,
    download,
    exception_batches,
    stream,
)
from recon.review.listing import filtered_query
from recon.review.models import Approval, ReconException
from recon.storage import Storage
from recon.users.models import User


def download_list(
    make: Callable[..., Export],
    *,
    session: SessionLike,
    storage: Storage,
    project: Project,
    args: dict[str, Any],
) -> Response:
    """A project list's export (``export_queue``, ``export_audit``) as a download, from
    the list's loaded arguments: its filters and ``format``."""
    filters = dict(args)
    fmt = filters.pop("format")
    return download(
        make(session=session, storage=storage, project=project, fmt=fmt, filters=filters)
    )


def export_queue(
    *, session: SessionLike, storage: Storage, project: Project, fmt: str, filters: dict[str, Any]
) -> Export:
    """Return the export of the project's exceptions list, every page of it, filtered and
    sorted as the list is (recon.review.listing's own query)."""
    query = (
        filtered_query(project_id=project.id, filters=filters)
        .add_columns(User.username)
        .outerjoin(User, User.id == ReconException.assignee_id)
    )
    chunks = stream(exception_batches(session, query), fmt, storage, "exceptions")
    return Export(
        filename=f"project-{project.id}-exceptions.{fmt}", mimetype=MIMETYPES[fmt], chunks=chunks
    )


AUDIT_COLUMNS = (
    "id",
    "created_at",
    "actor",
    "action",
    "object_type",
    "object_id",
    "before",
    "after",
    "request_id",
)
APPROVAL_COLUMNS = (
    "id",
    "kind",
    "status",
    "job_id",
    "manual_match_id",
    "exception_id",
    "maker",
    "checker",
    "write_off",
    "currency",
    "reason_code",
    "note",
    "decision_note",
    "created_at",
    "decided_at",
)


def export_audit(
    *, session: SessionLike, storage: Storage, project: Project, fmt: str, filters: dict[str, Any]
) -> Export:
    """Return the export of the project's audit log, newest first, filtered as the log's
    page is (object_type, object_id, action); before and after as JSON text."""
    query = events_query(project_id=project.id, **filters).execution_options(yield_per=BATCH)
    rows = (
        (
            e.id,
            e.created_at.isoformat(),
            e.actor,
            e.action,
            e.object_type,
            e.object_id,
            json.dumps(e.before, sort_keys=True, default=str) if e.before is not None else None,
            json.dumps(e.after, sort_keys=True, default=str) if e.after is not None else None,
            e.request_id,
        )
        for e in session.scalars(query)
    )
    chunks = stream(batched(rows, AUDIT_COLUMNS), fmt, storage, "audit")
    return Export(
        filename=f"project-{project.id}-audit.{fmt}", mimetype=MIMETYPES[fmt], chunks=chunks
    )


def export_approvals(
    *, session: SessionLike, storage: Storage, project: Project, fmt: str, status: str | None
) -> Export:
    """Return the export of the project's approvals, oldest first (``status`` filters)."""
    deciders = [
        select(c).where(Approval.project_id == project.id)
        for c in (Approval.maker_id, Approval.checker_id)
    ]
    names = {
        uid: name
        for uid, name in session.execute(
            select(User.id, User.username).where(or_(*[User.id.in_(d) for d in deciders]))
        )
    }
    rows = (
        (
            a["id"],
            a["kind"],
            a["status"],
            a["job_id"],
            a["manual_match_id"],
            a["exception_id"],
            names.get(a["maker_id"]),
            names.get(a["checker_id"]),
            a["write_off"],
            a["currency"],
            a["reason_code"],
            a["note"],
            a["decision_note"],
            a["created_at"].isoformat() if a["created_at"] else None,
            a["decided_at"].isoformat() if a["decided_at"] else None,
        )
        for a in approvals_of(session=session, project=project, status=status)
    )
    chunks = stream(batched(rows, APPROVAL_COLUMNS), fmt, storage, "approvals")
    return Export(
        filename=f"project-{project.id}-approvals.{fmt}", mimetype=MIMETYPES[fmt], chunks=chunks
    )
