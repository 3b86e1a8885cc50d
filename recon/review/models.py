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
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from recon.db_decimal import decimal_size
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
    # A manual match or a write-off waiting for a second person (four eyes): not open to
    # work, not explained either.
    pending_approval = "pending_approval"

    @property
    def is_open(self) -> bool:
        return self in (ExceptionStatus.open, ExceptionStatus.assigned, ExceptionStatus.reopened)


OPEN_STATUSES = (ExceptionStatus.open, ExceptionStatus.assigned, ExceptionStatus.reopened)
# Everything a period can't be closed with: open work and decisions awaiting approval.
UNEXPLAINED_STATUSES = (*OPEN_STATUSES, ExceptionStatus.pending_approval)


class ReconException(Model):
    """One record of one side that a job could not confirm.

    Its identity is (project, sources pair, side, row): a later job on the same pair
    updates the same exception instead of opening a new one, so work done on it
    (assignee, comments, resolution) carries over.
    """

    __tablename__ = "exceptions"
    __table_args__ = (
        UniqueConstraint("project_id", "pair_key", "side", "row", name="uq_exception_record"),
        # The decisions on a pair (recon.review.state): resolved, closed, pending approval.
        Index("ix_exceptions_pair_status", "project_id", "pair_key", "status"),
        # The exceptions list (recon.review.service): a project's page, whole or filtered by
        # status, kind or assignee, in (opened_at, id) order: keyset pages at any depth.
        Index("ix_exceptions_list", "project_id", "opened_at", "id"),
        Index("ix_exceptions_list_status", "project_id", "status", "opened_at", "id"),
        Index("ix_exceptions_list_kind", "project_id", "kind", "opened_at", "id"),
        Index("ix_exceptions_list_assignee", "project_id", "assignee_id", "opened_at", "id"),
        # A job's records a side: the counterparts of a match (the queue's detail), and the
        # open ones (the manual-match lists, counted up to the cap). Narrow: every
        # published exception writes it.
        Index("ix_exceptions_job_side", "job_id", "side", "match_id"),
        # The rejected suggestions of a pair (recon.review.state.overrides): a few rows.
        Index(
            "ix_exceptions_rejected",
            "project_id",
            "pair_key",
            sqlite_where=text("rejected_pass IS NOT NULL"),
            postgresql_where=text("rejected_pass IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Indexed by ix_exceptions_list (its first column): one index fewer to write per row.
    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), nullable=False
    )
    # Indexed by ix_exceptions_job_side (its first column).
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False)
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
    # Exact: the decimal as text with ``scale`` decimals (sums and bounds in SQL through
    # recon.db_decimal: NUMERIC on PostgreSQL, Decimal functions on SQLite).
    amount: Mapped[str] = mapped_column(String(64), nullable=False)
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
    )
    assignee_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    reason_code: Mapped[str | None] = mapped_column(String(64))
    note: Mapped[str | None] = mapped_column(Text)
    # People's decisions that the engine's answer does not hold: the manual match the
    # record belongs to (active or awaiting approval), and the pass whose suggestion a
    # person rejected (it applies while the record stays unmatched).
    manual_match_id: Mapped[int | None] = mapped_column(
        ForeignKey("manual_matches.id", ondelete="SET NULL")
    )
    rejected_pass: Mapped[str | None] = mapped_column(String(100))
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(
        UTCDateTime(), nullable=False, default=utcnow, onupdate=utcnow
    )


# The list by amount's size, smallest first or (read backwards) largest first.
Index(
    "ix_exceptions_list_size",
    ReconException.project_id,
    decimal_size(ReconException.amount),
    ReconException.id,
)


class ExceptionTally(Model):
    """How many exceptions, and their exact amounts, a project holds per pair, side, status,
    kind, currency, opening time and scale: what analytics sums instead of reading every
    exception (recon.review.tallies keeps it equal to the exceptions)."""

    __tablename__ = "exception_tallies"
    __table_args__ = (
        UniqueConstraint(
            "project_id",
            "pair_key",
            "side",
            "status",
            "kind",
            "currency",
            "opened_at",
            "scale",
            name="uq_exception_tally",
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), nullable=False
    )
    pair_key: Mapped[str] = mapped_column(String(64), nullable=False)
    side: Mapped[str] = mapped_column(String(8), nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    currency: Mapped[str] = mapped_column(String(8), nullable=False)  # '' when none
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    scale: Mapped[int] = mapped_column(Integer, nullable=False)
    records: Mapped[int] = mapped_column(BigInteger, nullable=False)
    # Exact decimals as text: the sum of the amounts and of their absolute values.
    total: Mapped[str] = mapped_column(String(80), nullable=False)
    gross: Mapped[str] = mapped_column(String(80), nullable=False)


class Comment(Model):
    __tablename__ = "exception_comments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    exception_id: Mapped[int] = mapped_column(
        ForeignKey("exceptions.id", ondelete="CASCADE"), nullable=False, index=True
    )
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    body: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)


class ManualMatchStatus(enum.StrEnum):
    active = "active"
    pending_approval = "pending_approval"
    rejected = "rejected"  # its write-off was refused by the checker
    undone = "undone"


class ManualMatch(Model):
    """Records matched by hand across sides, with the difference and any write-off.

    Kept when undone or rejected (the audit trail points at it); only an ``active``
    match counts in the current state.
    """

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
    currency: Mapped[str | None] = mapped_column(String(8))
    status: Mapped[ManualMatchStatus] = mapped_column(
        Enum(ManualMatchStatus, name="manual_match_status", native_enum=False, length=16),
        nullable=False,
        default=ManualMatchStatus.active,
    )
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    undone_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    undone_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class ApprovalKind(enum.StrEnum):
    manual_match = "manual_match"
    resolution = "resolution"


class ApprovalStatus(enum.StrEnum):
    pending = "pending"
    approved = "approved"
    rejected = "rejected"


class Approval(Model):
    """A write-off waiting for (or decided by) a second person: the four-eyes control."""

    __tablename__ = "approvals"
    __table_args__ = (Index("ix_approvals_project_status", "project_id", "status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), nullable=False
    )
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False)
    kind: Mapped[ApprovalKind] = mapped_column(
        Enum(ApprovalKind, name="approval_kind", native_enum=False, length=16), nullable=False
    )
    manual_match_id: Mapped[int | None] = mapped_column(
        ForeignKey("manual_matches.id", ondelete="CASCADE")
    )
    exception_id: Mapped[int | None] = mapped_column(
        ForeignKey("exceptions.id", ondelete="CASCADE")
    )
    maker_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    # The amount written off (exact decimal as text) and its currency ('' when none).
    write_off: Mapped[str] = mapped_column(String(64), nullable=False)
    currency: Mapped[str] = mapped_column(String(8), nullable=False, default="")
    reason_code: Mapped[str | None] = mapped_column(String(64))
    note: Mapped[str | None] = mapped_column(Text)
    status: Mapped[ApprovalStatus] = mapped_column(
        Enum(ApprovalStatus, name="approval_status", native_enum=False, length=16),
        nullable=False,
        default=ApprovalStatus.pending,
    )
    checker_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    decision_note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
