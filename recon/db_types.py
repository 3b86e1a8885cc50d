"""Column types shared by the models, the session type, and read-only blocks for SQLite."""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, TypeAlias

from sqlalchemy import DateTime
from sqlalchemy.orm import Session, scoped_session
from sqlalchemy.types import TypeDecorator


def utcnow() -> datetime:
    """Return the current time as an aware UTC datetime."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Stores UTC without a zone (SQLite keeps none) and always returns aware UTC datetimes."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


# What services accept: a plain Session (tests, scripts) or Flask-SQLAlchemy's scoped proxy.
SessionLike: TypeAlias = Session | scoped_session[Any]


# Set while a block only reads: its SQLite transactions begin deferred (no write lock).
_READING = contextvars.ContextVar("recon_sqlite_reading", default=False)


@contextmanager
def reading_only() -> Iterator[None]:
    """Begin the block's SQLite transactions deferred: they read a WAL snapshot and take no
    write lock (for work outside a request that only reads, such as a job's cancel poll)."""
    token = _READING.set(True)
    try:
        yield
    finally:
        _READING.reset(token)


def reading() -> bool:
    """Whether the current block only reads (``reading_only``)."""
    return _READING.get()
