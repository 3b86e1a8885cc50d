"""What every response gets: a request id, security headers, CORS for allowed origins, a log
line."""

from __future__ import annotations

import logging
import re
import time
import uuid

from flask import Flask, Response, current_app, g, request

log = logging.getLogger("recon.access")

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,128}$")

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Strict-Transport-Security": "max-age=31536000; includeSubDomains",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}
# The API returns JSON only. Pages (the workspace and the API docs) load scripts and styles
# from this origin only, never inline scripts; images may be data: URIs (Swagger UI's icons).
API_CSP = "default-src 'none'; frame-ancestors 'none'"
PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
CORS_METHODS = "GET, POST, PATCH, DELETE, OPTIONS"
CORS_HEADERS = "Authorization, Content-Type, Idempotency-Key"


def _start_reaper() -> None:
    # Each web process runs the job reaper from its first request on (a readiness probe
    # comes within seconds of the start); tests drive the reaper themselves.
    reaper = current_app.extensions.get("recon_reaper")
    if reaper is not None and not current_app.testing:
        reaper.start()


def _start() -> Response | None:
    _start_reaper()
    g.start = time.perf_counter()
    incoming = request.headers.get("X-Request-ID", "")
    g.request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
    origin = request.headers.get("Origin")
    if (
        request.method == "OPTIONS"
        and origin
        and request.headers.get("Access-Control-Request-Method")
    ):
        # A preflight is answered here, before authentication, which it never carries.
        return Response(status=204 if origin in current_app.config["RECON_CORS_ORIGINS"] else 403)
    return None


def _finish(response: Response) -> Response:
    response.headers["X-Request-ID"] = g.get("request_id", "")
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    docs = request.path.startswith("/api/docs")
    api = request.path.startswith("/api/") and not docs
    response.headers.setdefault("Content-Security-Policy", API_CSP if api else PAGE_CSP)
    if not docs:
        response.headers.setdefault("Cache-Control", "no-store")
    origin = request.headers.get("Origin")
    if origin and origin in current_app.config["RECON_CORS_ORIGINS"]:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Allow-Methods"] = CORS_METHODS
        response.headers["Access-Control-Allow-Headers"] = CORS_HEADERS
        response.headers["Access-Control-Expose-Headers"] = "Location, Retry-After, X-Request-ID"
        response.headers["Access-Control-Max-Age"] = "600"
    response.headers.add("Vary", "Origin")
    _log_request(response)
    return response


def _log_request(response: Response) -> None:
    if not log.isEnabledFor(logging.INFO):
        return  # building the fields below costs about 10 us per request
    elapsed = time.perf_counter() - g.get("start", time.perf_counter())
    user = g.get("user")
    log.info(
        "%s %s %s",
        request.method,
        request.path,
        response.status_code,
        extra={
            "method": request.method,
            "path": request.path,
            "status": response.status_code,
            "route": request.url_rule.rule if request.url_rule else None,
            "duration_ms": round(elapsed * 1000, 2),
            "user_id": user.id if user else None,
            "remote_addr": request.remote_addr,
        },
    )


def init_app(app: Flask) -> None:
    app.before_request(_start)
    app.after_request(_finish)
