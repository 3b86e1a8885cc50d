"""Per-IP rate limits (Flask-Limiter): Redis storage when configured, in memory otherwise.

Each app gets its own ``Limiter``: one shared instance would keep the storage
and key prefix of the first app it was given, which breaks a second app in the
same process (tests) without anyone noticing.
"""

from __future__ import annotations

from flask import Flask, current_app
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

# endpoint -> the config key holding its limit ("10/minute")
LIMITED_ENDPOINTS = {
    "auth.Login": "RECON_LOGIN_RATE_LIMIT",
    "workspace.login": "RECON_LOGIN_RATE_LIMIT",  # the workspace's sign-in form
}


def init_app(app: Flask) -> Limiter:
    """Create the app's limiter and wrap the limited endpoints (after blueprints exist)."""
    limiter = Limiter(key_func=get_remote_address, app=app)
    for endpoint, setting in LIMITED_ENDPOINTS.items():

        def limit(setting: str = setting) -> str:
            return str(current_app.config[setting])

        view = app.view_functions[endpoint]
        app.view_functions[endpoint] = limiter.limit(limit, methods=["POST"])(view)  # type: ignore[assignment]
    return limiter
