"""Login, tokens and lockout.

Tokens are 256-bit random strings given to the client once; the DB keeps their
SHA-256. Resolving a token goes through the cache (``token:<hash>``), so every
change that must take effect at once (logout, deactivation, role or password
change) deletes that key.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from instrumentation import record_auth_attempt
from recon.auth.models import LoginFailures, Token
from recon.auth.passwords import verify_password
from recon.db_types import SessionLike, utcnow
from recon.errors import Unauthorized
from recon.users.models import Role, User
from recon.users.service import get_by_username


class Cache(Protocol):
    def get_or_set(self, key: str, loader: Any, ttl: int | None = None) -> Any: ...
    def delete(self, key: str) -> None: ...


@dataclass(frozen=True)
class CurrentUser:
    """Who is calling: what authorisation needs, cheap to cache."""

    id: int
    username: str
    role: Role

    @property
    def is_admin(self) -> bool:
        return self.role == Role.admin


@dataclass(frozen=True)
class LoginPolicy:
    token_ttl: int
    lockout_threshold: int
    lockout_seconds: int


class InvalidCredentials(Unauthorized):
    code = "invalid_credentials"


# One answer for every failure, so it tells an attacker nothing about which accounts exist.
BAD_LOGIN = "Invalid username or password, or the account is temporarily locked."


def hash_token(raw: str) -> str:
    """Return the hex SHA-256 of a raw token."""
    return hashlib.sha256(raw.encode()).hexdigest()


def token_cache_key(token_hash: str) -> str:
    return f"token:{token_hash}"


def login(
    *, session: SessionLike, username: str, password: str, address: str, policy: LoginPolicy
) -> tuple[str, Token]:
    """Return a new raw token and its row; raise InvalidCredentials on any failure.

    Failures count per (account, client ``address``): at ``lockout_threshold`` failures
    from one address the account is locked *for that address* for ``lockout_seconds``,
    doubled with each further lock. Other addresses are not affected, so no one can
    lock an account's owner out by failing on purpose.
    """
    user = get_by_username(session=session, username=username)
    password_ok = verify_password(user.password_hash if user else None, password)
    now = utcnow()
    if user is None:
        record_auth_attempt("failure")
        raise InvalidCredentials(BAD_LOGIN)
    address = address[:64]
    failures = session.scalars(
        select(LoginFailures).where(
            LoginFailures.user_id == user.id, LoginFailures.address == address
        )
    ).first()
    if failures is not None and failures.locked_until is not None and failures.locked_until > now:
        record_auth_attempt("locked")
        raise InvalidCredentials(BAD_LOGIN)
    if not password_ok or not user.active:
        if failures is None:
            failures = LoginFailures(user_id=user.id, address=address, failures=0, lockouts=0)
            session.add(failures)
        _count_failure(failures, now, policy)
        try:
            session.commit()
        except IntegrityError:  # a concurrent first failure from the same address won
            session.rollback()
        record_auth_attempt("locked" if failures.locked_until else "failure")
        raise InvalidCredentials(BAD_LOGIN)
    if failures is not None:
        session.delete(failures)
    raw, token = issue_token(session=session, user=user, ttl=policy.token_ttl)
    record_auth_attempt("success")
    return raw, token


def issue_token(*, session: SessionLike, user: User, ttl: int) -> tuple[str, Token]:
    """Return a new raw token for ``user`` valid for ``ttl`` seconds, and its stored row."""
    raw = secrets.token_urlsafe(32)
    token = Token(
        token_hash=hash_token(raw), user=user, expires_at=utcnow() + timedelta(seconds=ttl)
    )
    session.add(token)
    session.commit()
    return raw, token


def _count_failure(failures: LoginFailures, now: datetime, policy: LoginPolicy) -> None:
    failures.failures += 1
    failures.locked_until = None
    if failures.failures >= policy.lockout_threshold:
        failures.lockouts += 1
        failures.failures = 0
        seconds = policy.lockout_seconds * 2 ** min(failures.lockouts - 1, 10)
        failures.locked_until = now + timedelta(seconds=seconds)


def logout(*, session: SessionLike, raw_token: str, cache: Cache) -> None:
    """Revoke the token at once."""
    token_hash = hash_token(raw_token)
    token = session.scalars(select(Token).where(Token.token_hash == token_hash)).first()
    if token is not None and token.revoked_at is None:
        token.revoked_at = utcnow()
        session.commit()
    cache.delete(token_cache_key(token_hash))


def authenticate(*, session: SessionLike, raw_token: str, cache: Cache, ttl: int) -> CurrentUser:
    """Return the user a bearer token belongs to; raise Unauthorized if it is not valid now."""
    token_hash = hash_token(raw_token)

    def load() -> dict[str, Any] | None:
        token = session.scalars(select(Token).where(Token.token_hash == token_hash)).first()
        if token is None or token.revoked_at is not None or not token.user.active:
            return None
        user = CurrentUser(id=token.user.id, username=token.user.username, role=token.user.role)
        return {"user": asdict(user), "expires_at": token.expires_at.timestamp()}

    # The entry never outlives the token: a cached copy can't extend an expired one.
    entry = cache.get_or_set(token_cache_key(token_hash), load, ttl=ttl)
    if entry is None or entry["expires_at"] <= utcnow().timestamp():
        raise Unauthorized("The token is missing, expired or revoked.", code="invalid_token")
    data = entry["user"]
    return CurrentUser(id=data["id"], username=data["username"], role=Role(data["role"]))
