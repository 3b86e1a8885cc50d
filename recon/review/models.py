from __future__ import annotations

import enum
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Date,
    Enum,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from recon.db_types import UTCDateTime, utcnow
from recon.extensions import Model


class ExceptionKind(enum.StrEnum):
    break_ = "break"
    unmatched = "unmatched"
    suggested = "suggested"


class ExceptionStatus(enum.StrEnum):
    open = "open"
    assigned = "assigned"
    resolved = "resolved"
    closed = "closed"
    reopened = "reopened"

    @property
    def is_open(self) -> bool:
        return self in (ExceptionStatus.open, ExceptionStatus.assigned, ExceptionStatus.reopened)


OPEN_STATUSES = (ExceptionStatus.open, ExceptionStatus.assigned, ExceptionStatus.reopened)


class ReconException(Model):
    """One record of one side that a job could not confirm.

    Its identity is (project, sources pair, side, row): a later job on the same pair
    updates the same exception instead of opening a new one, so work done on it
    (assignee, comments, resolution) carries over.
    """

    __tablename__ = "exceptions"
    __table_args__ = (
        UniqueConstraint("project_id", "pair_key", "side", "row", name="uq_exception_record"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), nullable=False, index=True
    )
    job_id: Mapped[int] = mapped_column(
        ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False, index=True
    )
    pair_key: Mapped[str] = mapped_column(String(64), nullable=False)
    kind: Mapped[ExceptionKind] = mapped_column(
        Enum(
            ExceptionKind,
            name="exception_kind",
            native_enum=False,
            length=16,
            values_callable=lambda e: [m.value for m in e],
        ),
        nullable=False,
    )
    side: Mapped[str] = mapped_column(String(8), nullable=False)
    row: Mapped[int] = mapped_column(BigInteger, nullable=False)
    match_id: Mapped[int | None] = mapped_column(BigInteger)
    pass_name: Mapped[str | None] = mapped_column(String(100))
    key: Mapped[str | None] = mapped_column(String(255))
    # Exact: the decimal as text, and as integer minor units at ``scale`` for sums in SQL.
    amount: Mapped[str] = mapped_column(String(64), nullable=False)
    amount_minor: Mapped[int] = mapped_column(BigInteger, nullable=False)
    scale: Mapped[int] = mapped_column(Integer, nullable=False)
    currency: Mapped[str | None] = mapped_column(String(8))
    date: Mapped[date | None] = mapped_column(Date)
    description: Mapped[str | None] = mapped_column(Text)
    counterpart: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    diff: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    confidence: Mapped[str | None] = mapped_column(String(16))
    status: Mapped[ExceptionStatus] = mapped_column(
        Enum(ExceptionStatus, name="exception_status", native_enum=False, length=16),
        nullable=False,
        default=ExceptionStatus.open,
        index=True,
    )
    assignee_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    reason_code: Mapped[str | None] = mapped_column(String(64))
    note: Mapped[str | None] = mapped_column(Text)
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(
        UTCDateTime(), nullable=False, default=utcnow, onupdate=utcnow
    )


class Comment(Model):
    __tablename__ = "exception_comments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    exception_id: Mapped[int] = mapped_column(
        ForeignKey("exceptions.id", ondelete="CASCADE"), nullable=False, index=True
    )
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    body: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)


class ManualMatch(Model):
    """Records matched by hand across sides, with the difference and any write-off."""

    __tablename__ = "manual_matches"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), nullable=False, index=True
    )
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False)
    left_rows: Mapped[list[int]] = mapped_column(JSON, nullable=False)
    right_rows: Mapped[list[int]] = mapped_column(JSON, nullable=False)
    difference: Mapped[str] = mapped_column(String(64), nullable=False)
    write_off_reason: Mapped[str | None] = mapped_column(String(200))
    note: Mapped[str | None] = mapped_column(Text)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
