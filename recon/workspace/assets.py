"""The workspace's static files, served by the app with cache headers.

Vendored packages carry their version in their path, so browsers may keep them
for a year; the app's own files get a content hash in their URL (``?v=``) for
the same reason, and a short lifetime when asked for without it.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path

from flask import Response, request, send_from_directory, url_for

from recon.auth.guard import public

STATIC = Path(__file__).resolve().parent / "static"
YEAR = 365 * 24 * 3600
SHORT = 300
VENDOR = {
    "htmx": "vendor/htmx-2.0.11/htmx.min.js",
    "swagger_ui": "vendor/swagger-ui-5.35.0/",
}


@lru_cache(maxsize=256)
def _digest(filename: str) -> str:
    path = STATIC / filename
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12] if path.is_file() else ""


def asset_url(filename: str) -> str:
    """Return the URL of a static file, with its content hash so it can be cached for long."""
    return url_for("workspace.static_file", filename=filename, v=_digest(filename))


@public
def static_file(filename: str) -> Response:
    """Serve a static file: immutable when versioned, briefly cacheable otherwise."""
    versioned = filename.startswith("vendor/") or request.args.get("v") == _digest(filename)
    response = send_from_directory(STATIC, filename, max_age=YEAR if versioned else SHORT)
    response.cache_control.public = True
    if versioned:
        response.cache_control.immutable = True
    return response
