"""The exception workflow: assign, resolve, close, reopen, comment, accept or reject
suggestions (listing and reading: ``recon.review.listing``; bulk actions:
``recon.review.bulk``; manual matches: ``recon.review.manual``).

Every change appends one audit event in the same transaction and drops the
project's cached analytics. Transitions (anything else is 409):

    open | assigned | reopened  --assign-->  assigned
    open | assigned | reopened  --resolve (reason_code required)-->  resolved
    open | assigned | reopened  --close-->  closed
    resolved | closed           --reopen-->  reopened
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select

from instrumentation import db_query_timer
from recon.audit.service import SYSTEM, Actor, record, snapshot
from recon.cache_keys import Cache
from recon.db_types import SessionLike, utcnow
from recon.errors import Conflict, ValidationError
from recon.pagination import Page
from recon.projects.models import Membership, Project, ProjectRole
from recon.projects.settings import WRITE_OFF, allowed_reason, project_settings
from recon.review.approvals import request_approval
from recon.review.models import (
    OPEN_STATUSES,
    ApprovalKind,
    Comment,
    ExceptionKind,
    ExceptionStatus,
    ReconException,
)
from recon.review.signoff import ensure_unlocked
from recon.review.state import ACCEPTED, decisions_changed
from recon.users.models import Role, User

AUDITED = ("status", "kind", "assignee_id", "reason_code", "note", "resolved_at", "rejected_pass")
CLOSED_STATUSES = (ExceptionStatus.resolved, ExceptionStatus.closed)


def check_assignee(*, session: SessionLike, project: Project, user_id: int) -> None:
    """Raise ValidationError unless ``user_id`` may work the project's exceptions."""
    row = session.execute(
        select(Membership.role, User.role, User.active)
        .join(User, User.id == Membership.user_id)
        .where(Membership.project_id == project.id, Membership.user_id == user_id)
    ).first()
    if row is None or not row[2]:
        message = f"User {user_id} is not a member of this project."
    elif row[0] == ProjectRole.viewer or row[1] == Role.viewer:
        message = f"User {user_id} is a viewer here and can not work exceptions."
    else:
        return
    raise ValidationError(message, errors=[{"field": "assignee_id", "message": message}])


def _not_open(exc: ReconException, doing: str) -> Conflict:
    return Conflict(
        f"Exception {exc.id} is {exc.status.value}; reopen it before you {doing} it.",
        code="invalid_transition",
    )


def _resolve(
    session: SessionLike,
    project: Project,
    exc: ReconException,
    status: str,
    changes: dict[str, Any],
    now: datetime,
    actor: Actor,
) -> str:
    """Resolve or close ``exc``; a write-off that needs approval waits for a second person."""
    if not exc.status.is_open:
        raise Conflict(
            f"Exception {exc.id} is already {exc.status.value}.", code="invalid_transition"
        )
    reason = changes.get("reason_code")
    if status == "resolved" and not reason:
        raise ValidationError(
            "Resolving needs a reason_code.",
            errors=[{"field": "reason_code", "message": "Required to resolve."}],
        )
    settings = project_settings(project)
    if reason and not allowed_reason(settings, reason):
        raise ValidationError(
            f"{reason!r} is not a reason code of this project.",
            errors=[
                {
                    "field": "reason_code",
                    "message": "Use one of " + ", ".join(settings.reason_codes),
                }
            ],
        )
    if changes.get("assignee_id") is not None:
        exc.assignee_id = changes["assignee_id"]
    exc.reason_code = reason
    amount, currency = Decimal(exc.amount), exc.currency or ""
    if reason == WRITE_OFF and settings.needs_approval(amount, currency):
        exc.status = ExceptionStatus.pending_approval
        request_approval(
            session=session,
            project=project,
            job_id=exc.job_id,
            kind=ApprovalKind.resolution,
            write_off=amount,
            currency=currency,
            reason_code=reason,
            note=changes.get("note"),
            actor=actor,
            exception_id=exc.id,
        )
        return "exception.resolve_requested"
    exc.status = ExceptionStatus(status)
    exc.resolved_at = now
    return "exception.resolve" if status == "resolved" else "exception.close"


def _apply(
    session: SessionLike,
    project: Project,
    exc: ReconException,
    changes: dict[str, Any],
    now: datetime,
    actor: Actor,
) -> str:
    """Apply one PATCH to ``exc`` and return the audit action it amounts to."""
    status = changes.get("status")
    if exc.status == ExceptionStatus.pending_approval and set(changes) - {"note"}:
        raise Conflict(
            f"Exception {exc.id} waits for approval; approve or reject that first.",
            code="pending_approval",
        )
    if "reason_code" in changes and status not in ("resolved", "closed"):
        raise ValidationError(
            "reason_code goes with status resolved or closed.",
            errors=[{"field": "reason_code", "message": "Only with status resolved or closed."}],
        )
    if "assignee_id" in changes and changes["assignee_id"] is not None:
        check_assignee(session=session, project=project, user_id=changes["assignee_id"])
    action = "exception.update"
    if status is None and "assignee_id" in changes:
        status = "assigned" if changes["assignee_id"] is not None else None
        if status is None:  # unassign: back to open
            if not exc.status.is_open:
                raise _not_open(exc, "unassign")
            exc.assignee_id = None
            if exc.status == ExceptionStatus.assigned:
                exc.status = ExceptionStatus.open
            action = "exception.unassign"
    if status == "assigned":
        if not exc.status.is_open:
            raise _not_open(exc, "assign")
        assignee = changes.get("assignee_id", exc.assignee_id)
        if assignee is None:
            raise ValidationError(
                "Assigning needs an assignee.",
                errors=[{"field": "assignee_id", "message": "Required to assign."}],
            )
        exc.assignee_id, exc.status, action = assignee, ExceptionStatus.assigned, "exception.assign"
    elif status in ("resolved", "closed"):
        action = _resolve(session, project, exc, status, changes, now, actor)
    elif status == "reopened":
        if exc.status.is_open:
            raise Conflict(
                f"Exception {exc.id} is {exc.status.value}; only resolved or closed "
                "exceptions can be reopened.",
                code="invalid_transition",
            )
        if "assignee_id" in changes:
            exc.assignee_id = changes["assignee_id"]
        exc.status, exc.resolved_at, exc.reason_code = ExceptionStatus.reopened, None, None
        action = "exception.reopen"
    if "note" in changes:
        exc.note = changes["note"]
    elif action == "exception.update":
        raise ValidationError("Nothing to change: send status, assignee_id, note or reason_code.")
    return action


def _changed(
    *,
    session: SessionLike,
    project: Project,
    exc: ReconException,
    action: str,
    before: dict[str, Any],
    actor: Actor,
    cache: Cache | None,
    extra: dict[str, Any] | None = None,
) -> None:
    record(
        session=session,
        actor=actor,
        action=action,
        object_type="exception",
        object_id=exc.id,
        project_id=project.id,
        before=before,
        after={**snapshot(exc, AUDITED), **(extra or {})},
    )
    with db_query_timer("update", "exceptions"):
        session.commit()
    decisions_changed(session=session, cache=cache, project_id=project.id, pair_key=exc.pair_key)


def update_exception(
    *,
    session: SessionLike,
    project: Project,
    exception: ReconException,
    changes: dict[str, Any],
    actor: Actor = SYSTEM,
    cache: Cache | None = None,
    now: datetime | None = None,
) -> ReconException:
    """Return the exception assigned, resolved, closed, reopened or annotated per ``changes``."""
    ensure_unlocked(
        session=session, project_id=project.id, pair_key=exception.pair_key, job_id=exception.job_id
    )
    before = snapshot(exception, AUDITED)
    action = _apply(session, project, exception, changes, now or utcnow(), actor)
    exception.updated_at = now or utcnow()
    _changed(
        session=session,
        project=project,
        exc=exception,
        action=action,
        before=before,
        actor=actor,
        cache=cache,
    )
    return exception


def add_comment(
    *, session: SessionLike, exception: ReconException, body: str, actor: Actor = SYSTEM
) -> dict[str, Any]:
    """Return the new comment on ``exception`` (as the comment list shows it)."""
    ensure_unlocked(
        session=session,
        project_id=exception.project_id,
        pair_key=exception.pair_key,
        job_id=exception.job_id,
    )
    comment = Comment(exception_id=exception.id, author_id=actor.id, body=body)
    session.add(comment)
    session.flush()
    record(
        session=session,
        actor=actor,
        action="exception.comment",
        object_type="exception",
        object_id=exception.id,
        project_id=exception.project_id,
        after={"comment_id": comment.id, "body": body},
    )
    with db_query_timer("insert", "exception_comments"):
        session.commit()
    return _comment_view(comment, actor.name)


def _comment_view(comment: Comment, author: str | None) -> dict[str, Any]:
    return {
        "id": comment.id,
        "exception_id": comment.exception_id,
        "author_id": comment.author_id,
        "author": author,
        "body": comment.body,
        "created_at": comment.created_at,
    }


def get_comments(
    *, session: SessionLike, exception: ReconException, page: int = 1, per_page: int = 50
) -> Page[dict[str, Any]]:
    """Return a page of the exception's comments, oldest first, with their authors' names."""
    where = Comment.exception_id == exception.id
    with db_query_timer("select", "exception_comments"):
        total = session.scalar(select(func.count()).select_from(Comment).where(where)) or 0
        rows = session.execute(
            select(Comment, User.username)
            .outerjoin(User, User.id == Comment.author_id)
            .where(where)
            .order_by(Comment.created_at, Comment.id)
            .limit(per_page)
            .offset((page - 1) * per_page)
        ).all()
    items = [_comment_view(comment, name) for comment, name in rows]
    return Page(items=items, page=page, per_page=per_page, total=total)


def _suggestion(session: SessionLike, exc: ReconException) -> list[ReconException]:
    if exc.kind != ExceptionKind.suggested or exc.match_id is None:
        raise Conflict(
            f"Exception {exc.id} is a {exc.kind.value}, not a suggestion.", code="not_a_suggestion"
        )
    if not exc.status.is_open:
        raise Conflict(
            f"Exception {exc.id} is already {exc.status.value}.", code="invalid_transition"
        )
    with db_query_timer("select", "exceptions"):
        return list(
            session.scalars(
                select(ReconException)
                .where(
                    ReconException.project_id == exc.project_id,
                    ReconException.job_id == exc.job_id,
                    ReconException.match_id == exc.match_id,
                    ReconException.kind == ExceptionKind.suggested,
                    ReconException.status.in_(OPEN_STATUSES),
                )
                .order_by(ReconException.side, ReconException.row)
            )
        )


def decide_suggestion(
    *,
    session: SessionLike,
    project: Project,
    exception: ReconException,
    accept: bool,
    actor: Actor = SYSTEM,
    cache: Cache | None = None,
) -> list[ReconException]:
    """Return every exception of the suggestion, resolved (accept) or turned into unmatched
    records (reject: the suggestion is dropped; open, or assigned when someone has it)."""
    ensure_unlocked(
        session=session, project_id=project.id, pair_key=exception.pair_key, job_id=exception.job_id
    )
    members = _suggestion(session, exception)
    before = {m.id: snapshot(m, AUDITED) for m in members}
    now = utcnow()
    for member in members:
        if accept:
            member.status, member.reason_code, member.resolved_at = (
                ExceptionStatus.resolved,
                ACCEPTED,
                now,
            )
        else:
            # The rejection is a person's decision: remembered while the record stays unmatched.
            member.rejected_pass = member.pass_name
            member.kind, member.match_id, member.counterpart = ExceptionKind.unmatched, None, None
            member.pass_name, member.confidence = None, None
            member.status = ExceptionStatus.assigned if member.assignee_id else ExceptionStatus.open
        member.updated_at = now
    _changed(
        session=session,
        project=project,
        exc=exception,
        action="exception.accept" if accept else "exception.reject",
        before={"exceptions": before},
        actor=actor,
        cache=cache,
        extra={"exception_ids": [m.id for m in members]},
    )
    return members
