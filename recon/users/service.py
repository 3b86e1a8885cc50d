"""Users: list, read, create, update, deactivate."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError

from instrumentation import db_query_timer
from recon.audit.service import SYSTEM, Actor, record, snapshot
from recon.auth.models import LoginFailures, Token
from recon.auth.passwords import hash_password
from recon.db_types import SessionLike, utcnow
from recon.errors import Conflict, NotFound
from recon.pagination import Page, paginate
from recon.users.models import Role, User


def get_users(
    *, session: SessionLike, q: str | None = None, page: int = 1, per_page: int = 50
) -> Page[User]:
    """Return a page of users whose username or email contains ``q``, by username."""
    query = select(User).order_by(User.username)
    if q:
        pattern = f"%{q.lower()}%"
        query = query.where(
            or_(func.lower(User.username).like(pattern), func.lower(User.email).like(pattern))
        )
    with db_query_timer("select", "users"):
        return paginate(session, query, page=page, per_page=per_page)


def get_user(*, session: SessionLike, user_id: int) -> User:
    """Return the user with ``user_id`` or raise NotFound."""
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(f"User {user_id} does not exist.")
    return user


def get_by_username(*, session: SessionLike, username: str) -> User | None:
    """Return the user called ``username``, or None."""
    return session.scalars(select(User).where(User.username == username)).first()


FIELDS = ("username", "email", "role", "active")


def create_user(
    *,
    session: SessionLike,
    username: str,
    password: str,
    role: Role = Role.analyst,
    email: str | None = None,
    actor: Actor = SYSTEM,
) -> User:
    """Return a new active user; a taken username is a Conflict."""
    user = User(
        username=username,
        email=email,
        role=role,
        password_hash=hash_password(password),
        active=True,
    )
    session.add(user)
    try:
        session.flush()
        record(
            session=session,
            actor=actor,
            action="user.create",
            object_type="user",
            object_id=user.id,
            after=snapshot(user, FIELDS),
        )
        session.commit()
    except IntegrityError:
        session.rollback()
        raise Conflict(f"The username {username!r} is taken.", code="username_taken") from None
    return user


def update_user(
    *, session: SessionLike, user: User, changes: dict[str, Any], actor: Actor = SYSTEM
) -> User:
    """Return ``user`` after applying role, active, email and password changes.

    Deactivating, changing the password or the role revokes the user's tokens, so
    the change takes effect on their next request.
    """
    before = snapshot(user, FIELDS)
    revoke = False
    if "password" in changes:
        user.password_hash = hash_password(changes["password"])
        revoke = True
    if "role" in changes and changes["role"] != user.role:
        user.role = changes["role"]
        revoke = True
    if "active" in changes:
        if not changes["active"] and user.active:
            revoke = True
        user.active = changes["active"]
        if user.active:  # re-activated: forget its failed logins from every address
            session.execute(delete(LoginFailures).where(LoginFailures.user_id == user.id))
    if "email" in changes:
        user.email = changes["email"]
    if revoke:
        _revoke_tokens(session, user)
    after = snapshot(user, FIELDS)
    if "password" in changes:
        after["password_changed"] = True  # the fact, never the value
    record(
        session=session,
        actor=actor,
        action="user.update",
        object_type="user",
        object_id=user.id,
        before=before,
        after=after,
    )
    session.commit()
    return user


def deactivate_user(*, session: SessionLike, user: User, actor: Actor = SYSTEM) -> User:
    """Return ``user`` deactivated, with every token revoked."""
    return update_user(session=session, user=user, changes={"active": False}, actor=actor)


def _revoke_tokens(session: SessionLike, user: User) -> None:
    session.execute(
        update(Token)
        .where(Token.user_id == user.id, Token.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )


def token_hashes_of(*, session: SessionLike, user: User) -> list[str]:
    """Return the hashes of the user's tokens (to drop them from the cache)."""
    return list(session.scalars(select(Token.token_hash).where(Token.user_id == user.id)))
