"""The Prometheus exposition of a registry: ``GET /api/metrics`` on the app, and the parts
the worker's own listener (``instrumentation.listener``) shares with it."""

from __future__ import annotations

import hmac
import json
from collections.abc import Callable
from typing import Any

from flask import Flask, Response, current_app, request
from prometheus_client.exposition import choose_encoder

from instrumentation.metrics import Metrics

ENDPOINT = "recon_metrics.scrape"
PATH = "/api/metrics"
PROBLEM_JSON = "application/problem+json"
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="metrics"'}

# The app says what a refused scrape looks like (its problem+json body); without
# one, a bare RFC 9457 body.
UnauthorizedBody = Callable[[], dict[str, Any]]


def default_unauthorized() -> dict[str, Any]:
    return {"type": "about:blank", "title": "Unauthorized", "status": 401}


def authorized(header: str, expected: str) -> bool:
    """Whether an ``Authorization`` header carries ``expected`` as its bearer token."""
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(token.strip().encode(), expected.encode())


def exposition(metrics: Metrics, accept: str) -> tuple[bytes, str]:
    """Return the body and content type of a scrape asking for ``accept``."""
    encoder, content_type = choose_encoder(accept)
    registry = metrics.registry
    with metrics.scrape_lock:
        body = encoder(registry) if registry is not None else b""
    return body, content_type


def unauthorized_json(unauthorized: UnauthorizedBody) -> tuple[int, bytes]:
    body = unauthorized()
    return int(body.get("status", 401)), json.dumps(body).encode()


def register_metrics_view(
    app: Flask, metrics: Metrics, *, unauthorized: UnauthorizedBody = default_unauthorized
) -> None:
    """Serve ``metrics.registry`` at ``/api/metrics`` on ``app``."""

    def scrape() -> Response:
        token = current_app.config.get("RECON_METRICS_TOKEN")
        if token and not authorized(request.headers.get("Authorization", ""), str(token)):
            status, body = unauthorized_json(unauthorized)
            return Response(body, status=status, mimetype=PROBLEM_JSON, headers=CHALLENGE)
        body, content_type = exposition(metrics, request.headers.get("Accept", ""))
        response = Response(body, status=200, content_type=content_type)
        response.headers["Cache-Control"] = "no-store"
        return response

    # The scrape has its own bearer token (RECON_METRICS_TOKEN), not a user's:
    # recon's auth guard lets views marked ``public`` through to do their own check.
    scrape.public = True  # type: ignore[attr-defined]
    app.add_url_rule(PATH, endpoint=ENDPOINT, view_func=scrape, methods=["GET"])
