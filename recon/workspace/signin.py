"""The sign-in cookie and the CSRF token of the workspace.

The cookie holds an opaque token of the API's own kind (revocable, expiring), is
HttpOnly and SameSite=Lax, and is Secure per ``RECON_COOKIE_SECURE`` (``auto``:
when the request came over HTTPS, ProxyFix included). Every state-changing
request carries Flask-WTF's CSRF token, as a form field or as the
``X-CSRFToken`` header htmx sends from ``hx-headers`` on ``<body>``.
"""

from __future__ import annotations

import logging
import secrets
from datetime import datetime
from typing import Any

from flask import Flask, Response, current_app, request
from flask.sessions import SecureCookieSessionInterface
from flask_wtf.csrf import CSRFProtect

log = logging.getLogger("recon.workspace")

TOKEN_COOKIE = "recon_token"  # noqa: S105 - the name of a cookie, not a secret
SESSION_COOKIE = "recon_session"  # holds only the CSRF secret
csrf = CSRFProtect()


def cookie_secure() -> bool:
    """Whether this response's cookies get the Secure flag."""
    setting = current_app.config["RECON_COOKIE_SECURE"]
    if setting == "auto":
        return request.is_secure
    return bool(setting == "true")


class SessionInterface(SecureCookieSessionInterface):
    """Flask's signed session cookie, Secure exactly when the sign-in cookie is."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return cookie_secure()


def set_token_cookie(response: Response, raw: str, expires_at: datetime) -> None:
    response.set_cookie(
        TOKEN_COOKIE,
        raw,
        expires=expires_at,
        httponly=True,
        samesite="Lax",
        secure=cookie_secure(),
        path="/",
    )


def clear_token_cookie(response: Response) -> None:
    response.delete_cookie(TOKEN_COOKIE, path="/", httponly=True, samesite="Lax")


def init_app(app: Flask) -> None:
    """Configure the secret, the session cookie and CSRF (checked by the workspace only)."""
    secret = app.config.get("RECON_SECRET_KEY")
    if not secret:
        # Fine for one process; behind several pods every pod needs the same key.
        log.info("RECON_SECRET_KEY is not set: CSRF tokens are signed with a per-process key")
        secret = secrets.token_urlsafe(32)
    settings: dict[str, Any] = {
        "SECRET_KEY": secret,
        "SESSION_COOKIE_NAME": SESSION_COOKIE,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        # The API must not get CSRF checks: it takes no cookies. The workspace calls protect().
        "WTF_CSRF_CHECK_DEFAULT": False,
        "WTF_CSRF_TIME_LIMIT": app.config["RECON_TOKEN_TTL"],
    }
    app.config.update(settings)
    app.session_interface = SessionInterface()
    csrf.init_app(app)
