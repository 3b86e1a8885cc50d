from __future__ import annotations

from typing import Any

from flask import current_app, request
from flask.views import MethodView
from flask_smorest import Blueprint

from recon.auth.guard import bearer_token, current_user, public
from recon.auth.schemas import LoginSchema, TokenSchema
from recon.auth.service import LoginPolicy, login, logout
from recon.extensions import db
from recon.users.schemas import UserSchema
from recon.users.service import get_user

blp = Blueprint("auth", __name__, url_prefix="/api/auth", description="Log in and out")


@blp.route("/login")
@public
class Login(MethodView):
    # Rate limited per IP by recon.ratelimit (RECON_LOGIN_RATE_LIMIT).

    @blp.arguments(LoginSchema)
    @blp.response(200, TokenSchema)
    @blp.doc(security=[])
    def post(self, creds: dict[str, Any]) -> dict[str, Any]:
        """Exchange a username and password for a bearer token."""
        config = current_app.config
        raw, token = login(
            session=db.session,
            username=creds["username"],
            password=creds["password"],
            # The address as the trusted proxies report it (RECON_PROXY_HOPS, ProxyFix).
            address=request.remote_addr or "",
            policy=LoginPolicy(
                token_ttl=config["RECON_TOKEN_TTL"],
                lockout_threshold=config["RECON_LOCKOUT_THRESHOLD"],
                lockout_seconds=config["RECON_LOCKOUT_SECONDS"],
            ),
        )
        return {
            "access_token": raw,
            "token_type": "Bearer",
            "expires_at": token.expires_at,
            "user": token.user,
        }


@blp.route("/logout", methods=["POST"])
@blp.response(204)
def logout_view() -> None:
    """Revoke the token of this request at once."""
    logout(
        session=db.session,
        raw_token=bearer_token() or "",
        cache=current_app.extensions["recon_cache"],
    )


@blp.route("/me", methods=["GET"])
@blp.response(200, UserSchema)
def me() -> Any:
    """The authenticated user."""
    return get_user(session=db.session, user_id=current_user().id)
