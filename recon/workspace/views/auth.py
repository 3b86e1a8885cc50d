"""Sign in and out: the API's own login and logout, with the token kept in a cookie."""

from __future__ import annotations

from typing import Any

from flask import current_app, make_response, redirect, request, session, url_for

from recon.auth.guard import public
from recon.auth.schemas import LoginSchema
from recon.auth.service import InvalidCredentials, LoginPolicy, login, logout
from recon.errors import ValidationError
from recon.workspace.blueprint import bp
from recon.workspace.forms import field_errors, load
from recon.workspace.render import page, safe_next
from recon.workspace.signin import TOKEN_COOKIE, clear_token_cookie, set_token_cookie
from recon.workspace.views.common import cache
from recon.workspace.views.common import session as db_session


@bp.route("/login", methods=["GET", "POST"], endpoint="login")
@public
def login_page() -> Any:
    """The sign-in form; a good password sets the cookie and goes on to ``next``."""
    target = safe_next(request.values.get("next")) or url_for("workspace.projects")
    if request.method == "GET":
        return page("workspace/login.html", next=target)
    try:
        creds = load(LoginSchema(), request.form)
        config = current_app.config
        raw, token = login(
            session=db_session(),
            username=creds["username"],
            password=creds["password"],
            address=request.remote_addr or "",
            policy=LoginPolicy(
                token_ttl=config["RECON_TOKEN_TTL"],
                lockout_threshold=config["RECON_LOCKOUT_THRESHOLD"],
                lockout_seconds=config["RECON_LOCKOUT_SECONDS"],
            ),
        )
    except (InvalidCredentials, ValidationError) as error:
        return page(
            "workspace/login.html",
            status=error.status,
            next=target,
            error=error,
            errors=field_errors(error) if isinstance(error, ValidationError) else {},
            username=request.form.get("username", ""),
        )
    response = make_response(redirect(target, code=303))
    set_token_cookie(response, raw, token.expires_at)
    return response


@bp.route("/logout", methods=["POST"], endpoint="logout")
def logout_page() -> Any:
    """Revoke the cookie's token at once and forget it."""
    logout(session=db_session(), raw_token=request.cookies.get(TOKEN_COOKIE, ""), cache=cache())
    session.clear()
    response = make_response(redirect(url_for("workspace.login", signed_out=1), code=303))
    clear_token_cookie(response)
    return response
