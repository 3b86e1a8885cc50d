"""Flask request hooks feeding the HTTP request counter and duration histogram.

The start hook is put first and the finish hook last, so the duration covers
the other hooks (authentication, the rate limiter) and the status is the one
the client receives, including 429s and 404s answered before the view runs.
"""

from __future__ import annotations

import time

from flask import Flask, Response, g, request

from instrumentation.metrics import Metrics
from instrumentation.recorders import UNMATCHED_ROUTE

_START = "_recon_request_start"
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def register_request_hooks(app: Flask, metrics: Metrics) -> None:
    """Install the HTTP metric hooks on ``app`` (once)."""

    def start_timer() -> None:
        setattr(g, _START, time.perf_counter())

    def record(response: Response) -> Response:
        start = g.pop(_START, None)
        if start is not None:
            elapsed = time.perf_counter() - start
            method = request.method
            rule = request.url_rule
            metrics.record_request(
                # An arbitrary method would be a new series per attacker's whim.
                method if method in _METHODS else "OTHER",
                rule.rule if rule is not None else UNMATCHED_ROUTE,
                response.status_code,
                elapsed,
            )
        return response

    app.before_request_funcs.setdefault(None, []).insert(0, start_timer)
    # after_request functions run in reverse order of registration: first runs last.
    app.after_request_funcs.setdefault(None, []).insert(0, record)
