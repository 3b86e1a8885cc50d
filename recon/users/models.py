from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Boolean, Enum, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from recon.db_types import UTCDateTime, utcnow
from recon.extensions import Model


class Role(enum.StrEnum):
    """Global roles: admins manage users and see every project; viewers never write."""

    admin = "admin"
    analyst = "analyst"
    viewer = "viewer"


class User(Model):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(80), unique=True, nullable=False)
    email: Mapped[str | None] = mapped_column(String(254))
    password_hash: Mapped[str] = mapped_column(String(255), nullable=False)
    role: Mapped[Role] = mapped_column(
        Enum(Role, name="user_role", native_enum=False, length=16),
        nullable=False,
        default=Role.analyst,
    )
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    # Unused since migration 0005 (lockout is per account and address: auth.LoginFailures).
    # Kept so pods of the previous release keep working during a rolling upgrade; drop
    # them in a later migration.
    failed_logins: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    lockouts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        UTCDateTime(), nullable=False, default=utcnow, onupdate=utcnow
    )

    @property
    def is_admin(self) -> bool:
        return self.role == Role.admin
