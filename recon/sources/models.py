from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
    true,
)
from sqlalchemy.orm import Mapped, mapped_column

from recon.db_types import UTCDateTime, utcnow
from recon.extensions import Model


class Source(Model):
    """An uploaded file, ingested into canonical Parquet; the DB keeps what describes it.

    The same bytes are one source per (mapping, options): ``settings_sha256`` is the
    SHA-256 of the mapping and options the upload asked for, so re-reading a file under
    another mapping is a new source and only an identical upload is a duplicate.
    """

    __tablename__ = "sources"
    __table_args__ = (
        UniqueConstraint("project_id", "sha256", "settings_sha256", name="uq_source_content"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), nullable=False, index=True
    )
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    filename: Mapped[str] = mapped_column(String(255), nullable=False)
    format: Mapped[str] = mapped_column(String(8), nullable=False)
    sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    settings_sha256: Mapped[str] = mapped_column(
        String(64), nullable=False, server_default=text("''")
    )
    size_bytes: Mapped[int] = mapped_column(BigInteger, nullable=False)
    row_count: Mapped[int] = mapped_column(BigInteger, nullable=False)
    path: Mapped[str] = mapped_column(String(255), nullable=False)
    options: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    mapping: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    schema: Mapped[list[dict[str, Any]]] = mapped_column(JSON, nullable=False)
    columns: Mapped[list[str]] = mapped_column(JSON, nullable=False)
    amount_scale: Mapped[int] = mapped_column(Integer, nullable=False)
    sums: Mapped[dict[str, str]] = mapped_column(JSON, nullable=False)
    min_date: Mapped[date | None] = mapped_column(Date)
    max_date: Mapped[date | None] = mapped_column(Date)
    # Statement files: one entry per statement {account, id, opening, closing, records_sum,
    # balanced}; lines left out of a CSV (footers, skipped empty amounts) {line, text}.
    statements: Mapped[list[dict[str, Any]]] = mapped_column(
        JSON, nullable=False, server_default=text("'[]'")
    )
    skipped_lines: Mapped[list[dict[str, Any]]] = mapped_column(
        JSON, nullable=False, server_default=text("'[]'")
    )
    # The extra named fields (mapping.fields) stored normalised beside the canonical ones.
    fields: Mapped[list[str]] = mapped_column(JSON, nullable=False, server_default=text("'[]'"))
    # False for a source uploaded without a key column: passes on the key are refused for it.
    has_key: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=true())
    profile_id: Mapped[int | None] = mapped_column(
        ForeignKey("source_profiles.id", ondelete="SET NULL"), index=True
    )
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)


class SourceProfile(Model):
    """A project's saved mapping and options for one kind of export (a bank's CSV, say)."""

    __tablename__ = "source_profiles"
    __table_args__ = (UniqueConstraint("project_id", "name", name="uq_source_profile_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), nullable=False, index=True
    )
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    description: Mapped[str] = mapped_column(Text, nullable=False, default="")
    mapping: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    options: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        UTCDateTime(), nullable=False, default=utcnow, onupdate=utcnow
    )
