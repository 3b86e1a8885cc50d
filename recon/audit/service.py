"""Append audit events and page through them. There is deliberately no update or delete."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, select

from instrumentation import db_query_timer
from recon.audit.models import AuditEvent
from recon.db_types import SessionLike
from recon.pagination import Page, paginate


@dataclass(frozen=True)
class Actor:
    """Who made a change and under which request (None for the system: jobs, start-up)."""

    id: int | None = None
    name: str | None = None
    request_id: str | None = None


SYSTEM = Actor(name="system")


def snapshot(obj: Any, fields: tuple[str, ...]) -> dict[str, Any]:
    """Return the named attributes of ``obj`` as JSON-safe values (for before/after)."""
    out: dict[str, Any] = {}
    for name in fields:
        value = getattr(obj, name)
        if hasattr(value, "isoformat"):
            value = value.isoformat()
        elif hasattr(value, "value"):  # enums
            value = value.value
        elif value is not None and not isinstance(value, str | int | float | bool | list | dict):
            value = str(value)
        out[name] = value
    return out


def record(
    *,
    session: SessionLike,
    actor: Actor,
    action: str,
    object_type: str,
    object_id: Any,
    project_id: int | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> AuditEvent:
    """Add an event to the session; it commits with the change it describes."""
    event = AuditEvent(
        project_id=project_id,
        actor_id=actor.id,
        actor=actor.name,
        action=action,
        object_type=object_type,
        object_id=None if object_id is None else str(object_id),
        before=before,
        after=after,
        request_id=actor.request_id,
    )
    session.add(event)
    return event


def get_events(
    *,
    session: SessionLike,
    project_id: int | None,
    page: int = 1,
    per_page: int = 50,
    object_type: str | None = None,
    object_id: str | None = None,
    action: str | None = None,
) -> Page[AuditEvent]:
    """Return a page of events, newest first (a project's, or all with project_id None)."""
    query = events_query(
        project_id=project_id, object_type=object_type, object_id=object_id, action=action
    )
    with db_query_timer("select", "audit_events"):
        return paginate(session, query, page=page, per_page=per_page)


def events_query(
    *,
    project_id: int | None,
    object_type: str | None = None,
    object_id: str | None = None,
    action: str | None = None,
) -> Select[Any]:
    """Return the select of the events, newest first, that the filters keep."""
    query = select(AuditEvent).order_by(AuditEvent.id.desc())
    if project_id is not None:
        query = query.where(AuditEvent.project_id == project_id)
    if object_type:
        query = query.where(AuditEvent.object_type == object_type)
    if object_id:
        query = query.where(AuditEvent.object_id == object_id)
    if action:
        query = query.where(AuditEvent.action == action)
    return query
