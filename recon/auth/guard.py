"""Every route needs a bearer token unless its view is marked ``public``.

Secure by default: a new route is protected without anyone remembering to be.
A blueprint registered with ``authenticate_by_cookie`` (the workspace) takes the
same opaque token from a cookie instead, and only from it: the cookie never
authenticates another blueprint's routes (``/api/*`` stays bearer-only).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from flask import Flask, current_app, g, request

from instrumentation import record_authz_denied
from recon.audit.service import Actor
from recon.auth.service import CurrentUser, authenticate
from recon.errors import Forbidden, Unauthorized
from recon.extensions import db
from recon.projects.models import Project, ProjectRole
from recon.projects.service import get_project

F = TypeVar("F", bound=Callable[..., Any])

# Endpoints of extensions that are public by nature (the OpenAPI spec and its UI).
PUBLIC_ENDPOINTS = {"static", "api-docs.openapi_json", "api-docs.openapi_swagger_ui"}
COOKIE_BLUEPRINTS = "recon_cookie_blueprints"  # app.extensions key: blueprint -> cookie name


def authenticate_by_cookie(app: Flask, *, blueprint: str, cookie: str) -> None:
    """Let the routes of ``blueprint``, and only those, take their token from ``cookie``."""
    app.extensions.setdefault(COOKIE_BLUEPRINTS, {})[blueprint] = cookie


def public(view: F) -> F:
    """Mark a view (function or MethodView class) as needing no token."""
    view.public = True  # type: ignore[attr-defined]
    return view


def bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def _is_public(endpoint: str) -> bool:
    if endpoint in PUBLIC_ENDPOINTS:
        return True
    view = current_app.view_functions.get(endpoint)
    return bool(
        getattr(view, "public", False)
        or getattr(getattr(view, "view_class", None), "public", False)
    )


def _authenticate_request() -> None:
    # Unmatched URLs and wrong methods fall through to their 404/405.
    if request.endpoint is None or request.method == "OPTIONS" or _is_public(request.endpoint):
        return
    cookie = current_app.extensions.get(COOKIE_BLUEPRINTS, {}).get(request.blueprint or "")
    token = (request.cookies.get(cookie) or None) if cookie else bearer_token()
    if token is None:
        if cookie:
            raise Unauthorized("Sign in to continue.", code="not_signed_in")
        raise Unauthorized(
            "Send a bearer token: Authorization: Bearer <token>.", code="missing_token"
        )
    g.user = authenticate(
        session=db.session,
        raw_token=token,
        cache=current_app.extensions["recon_cache"],
        ttl=current_app.config["RECON_CACHE_TTL"],
    )


def project_role(role: ProjectRole) -> Callable[[F], F]:
    """Declare the project role a view needs (default: viewer to read, editor to write)."""

    def mark(view: F) -> F:
        view.project_role = role  # type: ignore[attr-defined]
        return view

    return mark


def _needed_role() -> ProjectRole:
    view = current_app.view_functions[request.endpoint or ""]
    handler = getattr(getattr(view, "view_class", None), request.method.lower(), view)
    default = ProjectRole.viewer if request.method in ("GET", "HEAD") else ProjectRole.editor
    return getattr(handler, "project_role", default)


def _authorize_project() -> None:
    # Decided before the body is parsed, so a caller without access learns nothing from
    # validation errors, and no project-scoped route can forget the check.
    if g.get("user") is None or not request.view_args or "pid" not in request.view_args:
        return
    g.project = get_project(
        session=db.session,
        project_id=request.view_args["pid"],
        user=g.user,
        need=_needed_role(),
        cache=current_app.extensions["recon_cache"],
    )


def init_app(app: Flask) -> None:
    app.before_request(_authenticate_request)
    app.before_request(_authorize_project)


def current_user() -> CurrentUser:
    """Return the authenticated caller of this request."""
    user = g.get("user")
    if user is None:  # only a view wrongly marked public gets here
        raise Unauthorized()
    return user


def current_actor() -> Actor:
    """Return who is making this request's changes, for the audit log."""
    user = current_user()
    return Actor(id=user.id, name=user.username, request_id=g.get("request_id"))


def require_admin() -> CurrentUser:
    """Return the caller if they are an admin, else raise Forbidden."""
    user = current_user()
    if not user.is_admin:
        record_authz_denied("admin_only")
        raise Forbidden("Only admins can do this.", code="admin_only")
    return user


def current_project() -> Project:
    """Return the project of this URL, already checked against the caller's role."""
    project = g.get("project")
    if project is None:  # a route without <pid> asked for a project
        raise RuntimeError("current_project() outside a project-scoped route")
    return project


def admin_only() -> None:
    """A blueprint ``before_request``: only admins get past it."""
    require_admin()
