"""Bulk actions: assign, resolve, close or reopen every exception matching a filter, or
accept or reject every open suggestion among them.

Only the exceptions whose status allows the action change (the transitions of
``recon.review.service``); the rest are counted as skipped. One audit event
records the action, the filter, the count and the ids (the first
``AUDIT_ID_CAP`` of them); accepting and rejecting go through
``decide_suggestion`` one suggestion at a time, each with its own event.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import String, cast, exists, func, select, update

from instrumentation import db_query_timer
from recon.audit.service import SYSTEM, Actor, record
from recon.cache_keys import Cache
from recon.db_types import SessionLike, utcnow
from recon.errors import ValidationError
from recon.jobs.models import Job
from recon.projects.models import Project
from recon.projects.settings import WRITE_OFF, RequireApproval, allowed_reason, project_settings
from recon.review import tallies
from recon.review.listing import filtered_query
from recon.review.models import OPEN_STATUSES, ExceptionKind, ExceptionStatus, ReconException
from recon.review.service import CLOSED_STATUSES, check_assignee, decide_suggestion
from recon.review.state import decisions_changed

# An exception is frozen when a signed-off job on its pair holds it (recon.review.signoff).
FROZEN = exists().where(
    Job.project_id == ReconException.project_id,
    Job.signed_off_at.is_not(None),
    Job.id >= ReconException.job_id,
    cast(Job.left_source_id, String) + ":" + cast(Job.right_source_id, String)
    == ReconException.pair_key,
)

AUDIT_ID_CAP = 1000
CHUNK = 1000  # ids per UPDATE ... IN (...): well under every backend's parameter limit


_BULK: dict[str, tuple[tuple[ExceptionStatus, ...], ExceptionStatus]] = {
    "assign": (OPEN_STATUSES, ExceptionStatus.assigned),
    "resolve": (OPEN_STATUSES, ExceptionStatus.resolved),
    "close": (OPEN_STATUSES, ExceptionStatus.closed),
    "reopen": (CLOSED_STATUSES, ExceptionStatus.reopened),
}


def bulk_update(
    *,
    session: SessionLike,
    project: Project,
    filters: dict[str, Any],
    action: str,
    assignee_id: int | None = None,
    reason_code: str | None = None,
    note: str | None = None,
    actor: Actor = SYSTEM,
    cache: Cache | None = None,
) -> dict[str, int]:
    """Apply ``action`` to every exception matching ``filters`` whose status allows it;
    return ``{updated, skipped}``."""
    if action in ("accept", "reject"):
        return _decide_all(
            session=session,
            project=project,
            filters=filters,
            accept=action == "accept",
            actor=actor,
            cache=cache,
        )
    eligible, target = _BULK[action]
    values: dict[str, Any] = {"status": target, "updated_at": utcnow()}
    if action == "assign":
        if assignee_id is None:
            raise ValidationError(
                "Assigning needs an assignee.",
                errors=[{"field": "assignee_id", "message": "Required."}],
            )
        check_assignee(session=session, project=project, user_id=assignee_id)
        values["assignee_id"] = assignee_id
    elif action == "resolve":
        _check_reason(project, reason_code)
    if action in ("resolve", "close"):
        values.update(reason_code=reason_code, resolved_at=values["updated_at"])
    elif action == "reopen":
        values.update(reason_code=None, resolved_at=None)
    if note is not None:
        values["note"] = note
    query = filtered_query(project_id=project.id, filters=filters)
    with db_query_timer("select", "exceptions"):
        matching = session.scalar(select(func.count()).select_from(query.subquery())) or 0
        ids = list(
            session.scalars(
                query.with_only_columns(ReconException.id).where(
                    ReconException.status.in_(eligible), ~FROZEN
                )
            )
        )
    with db_query_timer("update", "exceptions"):
        for start in range(0, len(ids), CHUNK):
            chunk = ids[start : start + CHUNK]
            tallies.moving(session, chunk, values)
            session.execute(
                update(ReconException)
                .where(ReconException.id.in_(chunk))
                .values(**values)
                .execution_options(synchronize_session="fetch", tallied=True)
            )
    record(
        session=session,
        actor=actor,
        action=f"exception.bulk_{action}",
        object_type="exception",
        object_id=None,
        project_id=project.id,
        after={
            "filter": {k: _plain(v) for k, v in filters.items() if v is not None},
            "count": len(ids),
            "exception_ids": ids[:AUDIT_ID_CAP],
            "ids_truncated": len(ids) > AUDIT_ID_CAP,
            **{k: _plain(v) for k, v in values.items() if k != "updated_at"},
        },
    )
    session.commit()
    if ids:
        decisions_changed(session=session, cache=cache, project_id=project.id)
    return {"updated": len(ids), "skipped": matching - len(ids)}


def _check_reason(project: Project, reason_code: str | None) -> None:
    settings = project_settings(project)
    if not reason_code:
        raise ValidationError(
            "Resolving needs a reason_code.",
            errors=[{"field": "reason_code", "message": "Required."}],
        )
    if not allowed_reason(settings, reason_code):
        raise ValidationError(
            f"{reason_code!r} is not a reason code of this project.",
            errors=[
                {
                    "field": "reason_code",
                    "message": "Use one of " + ", ".join(settings.reason_codes),
                }
            ],
        )
    if reason_code == WRITE_OFF and settings.require_approval != RequireApproval.never:
        raise ValidationError(
            "Write-offs need approval in this project: resolve them one at a time.",
            code="approval_required",
            errors=[{"field": "reason_code", "message": "Not in bulk while approval is required."}],
        )


def _decide_all(
    *,
    session: SessionLike,
    project: Project,
    filters: dict[str, Any],
    accept: bool,
    actor: Actor,
    cache: Cache | None,
) -> dict[str, int]:
    query = filtered_query(project_id=project.id, filters=filters)
    with db_query_timer("select", "exceptions"):
        matching = session.scalar(select(func.count()).select_from(query.subquery())) or 0
        candidates = list(
            session.scalars(
                query.where(
                    ReconException.kind == ExceptionKind.suggested,
                    ReconException.status.in_(OPEN_STATUSES),
                    ~FROZEN,
                )
            )
        )
    decided: set[int] = set()
    for exception in candidates:
        if exception.id in decided:  # the other side of a suggestion decided a moment ago
            continue
        members = decide_suggestion(
            session=session,
            project=project,
            exception=exception,
            accept=accept,
            actor=actor,
            cache=cache,
        )
        decided.update(m.id for m in members)
    # Counted within the filter: the other side of a suggestion may lie outside it.
    updated = len(decided & {e.id for e in candidates})
    return {"updated": updated, "skipped": matching - updated}


def _plain(value: Any) -> Any:
    """The value as the audit log's JSON can hold it (amounts as exact text)."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return getattr(value, "value", value)
