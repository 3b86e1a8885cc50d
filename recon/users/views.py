from __future__ import annotations

from typing import Any

from flask import current_app
from flask.views import MethodView
from flask_smorest import Blueprint

from recon.auth.guard import admin_only, current_actor
from recon.auth.service import token_cache_key
from recon.extensions import db
from recon.pagination import SearchArgsSchema
from recon.users.schemas import UserCreateSchema, UserPageSchema, UserSchema, UserUpdateSchema
from recon.users.service import (
    create_user,
    deactivate_user,
    get_user,
    get_users,
    token_hashes_of,
    update_user,
)

blp = Blueprint("users", __name__, url_prefix="/api/users", description="Users (admins only)")
blp.before_request(admin_only)


def _forget_tokens(user: Any) -> None:
    cache = current_app.extensions["recon_cache"]
    for token_hash in token_hashes_of(session=db.session, user=user):
        cache.delete(token_cache_key(token_hash))


@blp.route("")
class Users(MethodView):
    @blp.arguments(SearchArgsSchema, location="query")
    @blp.response(200, UserPageSchema)
    def get(self, args: dict[str, Any]) -> Any:
        """List users; ``q`` searches username and email."""
        return get_users(session=db.session, **args)

    @blp.arguments(UserCreateSchema)
    @blp.response(201, UserSchema)
    def post(self, data: dict[str, Any]) -> Any:
        """Create a user."""
        return create_user(session=db.session, actor=current_actor(), **data)


@blp.route("/<int:user_id>")
class UserById(MethodView):
    @blp.response(200, UserSchema)
    def get(self, user_id: int) -> Any:
        """Read a user."""
        return get_user(session=db.session, user_id=user_id)

    @blp.arguments(UserUpdateSchema)
    @blp.response(200, UserSchema)
    def patch(self, changes: dict[str, Any], user_id: int) -> Any:
        """Change role, active, email or password; role, password and deactivation revoke tokens."""
        user = update_user(
            session=db.session,
            user=get_user(session=db.session, user_id=user_id),
            changes=changes,
            actor=current_actor(),
        )
        _forget_tokens(user)
        return user

    @blp.response(200, UserSchema)
    def delete(self, user_id: int) -> Any:
        """Deactivate a user (accounts are kept for the audit trail) and revoke their tokens."""
        user = deactivate_user(
            session=db.session,
            user=get_user(session=db.session, user_id=user_id),
            actor=current_actor(),
        )
        _forget_tokens(user)
        return user
