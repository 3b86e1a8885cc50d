"""The workspace: the web UI at ``/``, server-rendered (Jinja2 + htmx), calling the same
services as the API.

``init_app`` registers the blueprint and what it needs: the ``id`` URL converter
(ids a database can hold; larger ones are 404), the sign-in cookie (the guard
takes the token from it for these routes only), CSRF on every state-changing
request, HTML error pages, and template helpers. Assets are vendored and served
by ``recon.workspace.assets``; the Content-Security-Policy is set in
``recon.web``.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from flask import Flask
from werkzeug.routing import IntegerConverter

from recon.auth.guard import authenticate_by_cookie
from recon.db_types import utcnow
from recon.fields import MAX_ID
from recon.workspace import assets, signin, views  # noqa: F401  (views: registers the routes)
from recon.workspace.blueprint import bp
from recon.workspace.signin import TOKEN_COOKIE


class IdConverter(IntegerConverter):
    """A row id in a URL: 1 .. 2**63 - 1 (anything else does not match: 404)."""

    def __init__(self, map: Any) -> None:  # noqa: A002 - werkzeug's own parameter name
        super().__init__(map, min=1, max=MAX_ID)


def money(value: Any) -> str:
    """An exact amount with thousands separators, its decimals as they are."""
    if value is None or value == "":
        return ""
    try:
        return f"{Decimal(str(value)):,}"
    except (InvalidOperation, ValueError):
        return str(value)


def age_days(opened: datetime | None) -> int | None:
    return None if opened is None else (utcnow() - opened).days


def percent(value: Any) -> str:
    return "" if value is None else f"{float(value):.1%}"


def init_app(app: Flask) -> None:
    """Register the workspace on ``app`` (before the rate limiter wraps its login)."""
    app.url_map.converters["id"] = IdConverter
    signin.init_app(app)
    app.register_blueprint(bp)
    authenticate_by_cookie(app, blueprint=bp.name, cookie=TOKEN_COOKIE)
    app.add_template_global(assets.asset_url, "asset_url")
    app.jinja_env.globals["VENDOR"] = assets.VENDOR
    app.add_template_filter(money, "money")
    app.add_template_filter(age_days, "age_days")
    app.add_template_filter(percent, "percent")
