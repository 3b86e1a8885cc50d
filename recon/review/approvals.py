"""Four eyes: a write-off that the project's settings say needs approval waits for a second
editor or owner (``recon.projects.settings``).

The maker's manual match or resolution is recorded at once but stays
``pending_approval`` (its exceptions too: not open to work, not explained). Another
editor or owner approves (the records become matched or resolved) or rejects (they
return to the exceptions, open or assigned as before); the maker can do neither (403).
Every step is audited with before and after.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select

from instrumentation import db_query_timer
from recon.audit.service import SYSTEM, Actor, record, snapshot
from recon.cache_keys import Cache
from recon.db_types import SessionLike, utcnow
from recon.errors import Conflict, Forbidden, NotFound
from recon.jobs.models import Job
from recon.pagination import Page
from recon.projects.models import Project
from recon.review.models import (
    Approval,
    ApprovalKind,
    ApprovalStatus,
    ExceptionStatus,
    ManualMatch,
    ManualMatchStatus,
    ReconException,
)
from recon.review.signoff import ensure_unlocked
from recon.review.state import MATCHED_MANUALLY, decisions_changed, pair_key_of

AUDITED = ("status", "reason_code", "resolved_at", "manual_match_id")


def request_approval(
    *,
    session: SessionLike,
    project: Project,
    job_id: int,
    kind: ApprovalKind,
    write_off: Decimal,
    currency: str,
    reason_code: str | None,
    note: str | None,
    actor: Actor,
    manual_match_id: int | None = None,
    exception_id: int | None = None,
) -> Approval:
    """Return a new pending approval for a write-off (added to the session, no commit)."""
    approval = Approval(
        project_id=project.id,
        job_id=job_id,
        kind=kind,
        manual_match_id=manual_match_id,
        exception_id=exception_id,
        maker_id=actor.id,
        write_off=format(write_off, "f"),
        currency=currency,
        reason_code=reason_code,
        note=note,
        status=ApprovalStatus.pending,
    )
    session.add(approval)
    session.flush()
    return approval


def approval_view(approval: Approval) -> dict[str, Any]:
    """Return the approval as the API lists it."""
    return {
        "id": approval.id,
        "kind": approval.kind.value,
        "status": approval.status.value,
        "job_id": approval.job_id,
        "manual_match_id": approval.manual_match_id,
        "exception_id": approval.exception_id,
        "maker_id": approval.maker_id,
        "checker_id": approval.checker_id,
        "amount": approval.write_off,
        "write_off": approval.write_off,
        "currency": approval.currency,
        "reason_code": approval.reason_code,
        "note": approval.note,
        "decision_note": approval.decision_note,
        "created_at": approval.created_at,
        "decided_at": approval.decided_at,
    }


def _approvals_where(project: Project, status: str | None) -> list[Any]:
    where = [Approval.project_id == project.id]
    if status:
        where.append(Approval.status == ApprovalStatus(status))
    return where


def approvals_of(
    *, session: SessionLike, project: Project, status: str | None = None
) -> Iterator[dict[str, Any]]:
    """Yield every approval of the project as the API lists it, oldest first."""
    query = (
        select(Approval)
        .where(*_approvals_where(project, status))
        .order_by(Approval.created_at, Approval.id)
        .execution_options(yield_per=1000)
    )
    for approval in session.scalars(query):
        yield approval_view(approval)


def get_approvals(
    *,
    session: SessionLike,
    project: Project,
    status: str | None = None,
    page: int = 1,
    per_page: int = 50,
) -> Page[dict[str, Any]]:
    """Return a page of the project's approvals, oldest first (pending ones to decide)."""
    where = _approvals_where(project, status)
    with db_query_timer("select", "approvals"):
        total = session.scalar(select(func.count()).select_from(Approval).where(*where)) or 0
        rows = session.scalars(
            select(Approval)
            .where(*where)
            .order_by(Approval.created_at, Approval.id)
            .limit(per_page)
            .offset((page - 1) * per_page)
        ).all()
    return Page(
        items=[approval_view(a) for a in rows], page=page, per_page=per_page, total=int(total)
    )


def _members(session: SessionLike, approval: Approval) -> list[ReconException]:
    if approval.kind == ApprovalKind.manual_match:
        where = ReconException.manual_match_id == approval.manual_match_id
    else:
        where = ReconException.id == approval.exception_id
    return list(
        session.scalars(
            select(ReconException).where(
                ReconException.project_id == approval.project_id,
                where,
                ReconException.status == ExceptionStatus.pending_approval,
            )
        )
    )


def _back_to_work(exc: ReconException) -> None:
    exc.status = ExceptionStatus.assigned if exc.assignee_id else ExceptionStatus.open
    exc.reason_code, exc.resolved_at, exc.manual_match_id = None, None, None


def decide_approval(
    *,
    session: SessionLike,
    project: Project,
    approval_id: int,
    approve: bool,
    actor: Actor = SYSTEM,
    note: str | None = None,
    cache: Cache | None = None,
) -> dict[str, Any]:
    """Return the approval approved or rejected by ``actor`` (never its maker)."""
    approval = session.get(Approval, approval_id)
    if approval is None or approval.project_id != project.id:
        raise NotFound(f"Approval {approval_id} does not exist in this project.")
    if approval.status != ApprovalStatus.pending:
        raise Conflict(
            f"Approval {approval.id} is already {approval.status.value}.", code="already_decided"
        )
    if approval.maker_id is not None and approval.maker_id == actor.id:
        raise Forbidden(
            "You made this change: another editor or owner must approve or reject it.",
            code="own_approval",
        )
    job = session.get(Job, approval.job_id)
    assert job is not None  # approvals are deleted with their job
    ensure_unlocked(
        session=session, project_id=project.id, pair_key=pair_key_of(job), job_id=job.id
    )
    members = _members(session, approval)
    before = {m.id: snapshot(m, AUDITED) for m in members}
    now = utcnow()
    manual = (
        session.get(ManualMatch, approval.manual_match_id) if approval.manual_match_id else None
    )
    for member in members:
        if approve:
            member.status, member.resolved_at = ExceptionStatus.resolved, now
            member.reason_code = MATCHED_MANUALLY if manual is not None else approval.reason_code
        else:
            _back_to_work(member)
        member.updated_at = now
    if manual is not None:
        manual.status = ManualMatchStatus.active if approve else ManualMatchStatus.rejected
    approval.status = ApprovalStatus.approved if approve else ApprovalStatus.rejected
    approval.checker_id, approval.decided_at, approval.decision_note = actor.id, now, note
    record(
        session=session,
        actor=actor,
        action="approval.approve" if approve else "approval.reject",
        object_type="approval",
        object_id=approval.id,
        project_id=project.id,
        before={"status": "pending", "exceptions": before},
        after={
            "status": approval.status.value,
            "kind": approval.kind.value,
            "write_off": approval.write_off,
            "currency": approval.currency,
            "maker_id": approval.maker_id,
            "note": note,
            "exceptions": {m.id: snapshot(m, AUDITED) for m in members},
        },
    )
    with db_query_timer("update", "approvals"):
        session.commit()
    decisions_changed(
        session=session, cache=cache, project_id=project.id, pair_key=pair_key_of(job)
    )
    return approval_view(approval)
