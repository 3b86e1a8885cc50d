"""``GET /api/metrics``: the Prometheus exposition of this app's registry."""

from __future__ import annotations

import hmac
import json

from flask import Flask, Response, current_app, request
from prometheus_client.exposition import choose_encoder

from instrumentation.metrics import Metrics
from recon.errors import Unauthorized

ENDPOINT = "recon_metrics.scrape"
PATH = "/api/metrics"
PROBLEM_JSON = "application/problem+json"


def _unauthorized() -> Response:
    error = Unauthorized("A valid metrics bearer token is required.", code="metrics_unauthorized")
    return Response(
        json.dumps(error.to_problem()),
        status=error.status,
        mimetype=PROBLEM_JSON,
        headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
    )


def _authorized(expected: str) -> bool:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(token.strip().encode(), expected.encode())


def register_metrics_view(app: Flask, metrics: Metrics) -> None:
    """Serve ``metrics.registry`` at ``/api/metrics`` on ``app``."""

    def scrape() -> Response:
        token = current_app.config.get("RECON_METRICS_TOKEN")
        if token and not _authorized(str(token)):
            return _unauthorized()
        encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
        registry = metrics.registry
        with metrics.scrape_lock:
            body = encoder(registry) if registry is not None else b""
        response = Response(body, status=200, content_type=content_type)
        response.headers["Cache-Control"] = "no-store"
        return response

    # The scrape has its own bearer token (RECON_METRICS_TOKEN), not a user's:
    # recon's auth guard lets views marked ``public`` through to do their own check.
    scrape.public = True  # type: ignore[attr-defined]
    app.add_url_rule(PATH, endpoint=ENDPOINT, view_func=scrape, methods=["GET"])
