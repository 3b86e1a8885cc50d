"""The small functions the rest of recon calls to record metrics.

They find the current app's ``Metrics`` in ``current_app.extensions`` and do
nothing when there is none (outside an app context, or an app built without
instrumentation), so services and jobs never touch the OTel API and never fail
because metrics are off.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime
from typing import ParamSpec, TypeVar

from flask import current_app, has_app_context, has_request_context, request
from opentelemetry.instrumentation.utils import suppress_instrumentation

from instrumentation.metrics import Metrics

EXTENSION_KEY = "recon_metrics"
UNMATCHED_ROUTE = "<unmatched>"
NO_ROUTE = "<none>"
OPERATIONS = frozenset({"select", "insert", "update", "delete", "other"})

_route_name: ContextVar[str | None] = ContextVar("recon_route_name", default=None)
# Set while db_query_timer runs, so the statements inside it are not counted
# a second time by the cursor events under the same labels.
_in_timed_call: ContextVar[bool] = ContextVar("recon_in_timed_call", default=False)


def current_metrics() -> Metrics | None:
    """Return the current app's Metrics, or None when there is no app or no metrics."""
    if not has_app_context():
        return None
    metrics = current_app.extensions.get(EXTENSION_KEY)
    return metrics if isinstance(metrics, Metrics) else None


def current_route() -> str:
    """Return the route label: the request's URL rule, else the route_context name."""
    if has_request_context():
        rule = request.url_rule
        return rule.rule if rule is not None else UNMATCHED_ROUTE
    return _route_name.get() or NO_ROUTE


def in_timed_call() -> bool:
    return _in_timed_call.get()


P = ParamSpec("P")
R = TypeVar("R")


def quietly(function: Callable[P, R]) -> Callable[P, R]:
    """Wrap ``function`` so its queries are neither timed nor traced.

    For what the telemetry itself asks the database (the backlog gauges read
    at each collection): timing it would add a series per scrape, tracing it a
    root span per scrape.
    """

    def call(*args: P.args, **kwargs: P.kwargs) -> R:
        token = _in_timed_call.set(True)
        try:
            with suppress_instrumentation():
                return function(*args, **kwargs)
        finally:
            _in_timed_call.reset(token)

    return call


@contextmanager
def route_context(name: str) -> Iterator[None]:
    """Label the queries run outside a request (jobs, CLI) with ``name``."""
    token = _route_name.set(name)
    try:
        yield
    finally:
        _route_name.reset(token)


@contextmanager
def db_query_timer(operation: str, table: str) -> Iterator[None]:
    """Time a whole service call as one observation of the DB query histogram."""
    token = _in_timed_call.set(True)
    start = time.perf_counter()
    try:
        yield
    finally:
        elapsed = time.perf_counter() - start
        _in_timed_call.reset(token)
        metrics = current_metrics()
        if metrics is not None:
            op = operation if operation in OPERATIONS else "other"
            metrics.record_query(current_route(), op, table, elapsed)


def record_auth_attempt(outcome: str) -> None:
    """Count a login attempt: ``success``, ``failure`` or ``locked``."""
    metrics = current_metrics()
    if metrics is not None:
        metrics.auth_attempts.add(1, {"outcome": outcome})


def record_authz_denied(reason: str) -> None:
    """Count a request refused by authorisation (``not_member``, ``role``, ...)."""
    metrics = current_metrics()
    if metrics is not None:
        metrics.authz_denied.add(1, {"reason": reason})


def record_rate_limited() -> None:
    """Count a request answered 429 by the rate limiter."""
    metrics = current_metrics()
    if metrics is not None:
        metrics.rate_limited.add(1)


def record_upload_rejected(reason: str) -> None:
    """Count a rejected upload (``too_large``, ``bad_type``, ``invalid_rows`` ...)."""
    metrics = current_metrics()
    if metrics is not None:
        metrics.upload_rejected.add(1, {"reason": reason})


def record_job(status: str, duration_seconds: float | None) -> None:
    """Count a job reaching ``status``; record its wall time when it ran."""
    metrics = current_metrics()
    if metrics is None:
        return
    metrics.jobs.add(1, {"status": status})
    if duration_seconds is not None:
        metrics.job_duration.record(duration_seconds)


def record_job_error(step: str) -> None:
    """Count an exception that ended (or retried) a job attempt at ``step`` of its pipeline."""
    metrics = current_metrics()
    if metrics is not None:
        metrics.job_errors.add(1, {"step": step})


def record_records_processed(side: str, n: int) -> None:
    """Add ``n`` records read on ``side`` (``left`` or ``right``)."""
    metrics = current_metrics()
    if metrics is not None and n > 0:
        metrics.records_processed.add(n, {"side": side})


def record_queue_wait(
    *, attempt: int, queued_at: datetime | None, claimed_at: datetime | None
) -> None:
    """Record how long a job waited for its first claim (later attempts are redeliveries)."""
    metrics = current_metrics()
    if metrics is None or attempt != 1 or queued_at is None or claimed_at is None:
        return
    metrics.job_queue_wait.record(max(0.0, (claimed_at - queued_at).total_seconds()))


def record_engine_duration(seconds: float) -> None:
    """Record the matching engine's own time for one job."""
    metrics = current_metrics()
    if metrics is not None:
        metrics.engine_duration.record(seconds)
