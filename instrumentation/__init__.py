"""recon's observability: OpenTelemetry metrics at ``/api/metrics`` and request traces.

``init_app(app)`` gives the app its own ``MeterProvider`` and Prometheus
``CollectorRegistry`` (so two apps in one process never share a series),
declares every instrument once, and hooks Flask requests and the SQLAlchemy
engine. Importing this package creates nothing. Code elsewhere records through
the small functions re-exported here, never through the OTel API.

Metrics are exact per process: the shipped gunicorn config runs one worker
process with threads, and the provider is built in the worker (after fork).
"""

from __future__ import annotations

from collections.abc import Iterable

from flask import Flask
from opentelemetry.metrics import MeterProvider
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import CollectorRegistry

from instrumentation.metrics import Metrics, build_meter_provider
from instrumentation.recorders import (
    EXTENSION_KEY,
    current_metrics,
    current_route,
    db_query_timer,
    record_auth_attempt,
    record_authz_denied,
    record_job,
    record_rate_limited,
    record_records_processed,
    record_upload_rejected,
    route_context,
)
from instrumentation.sqla import instrument_engine
from instrumentation.tracing import current_span_id, current_trace_id, init_tracing
from instrumentation.view import register_metrics_view
from instrumentation.web import register_request_hooks

__all__ = [
    "Metrics",
    "build_meter_provider",
    "current_metrics",
    "current_route",
    "current_span_id",
    "current_trace_id",
    "db_query_timer",
    "init_app",
    "init_tracing",
    "record_auth_attempt",
    "record_authz_denied",
    "record_job",
    "record_rate_limited",
    "record_records_processed",
    "record_upload_rejected",
    "route_context",
]


def init_app(
    app: Flask,
    *,
    meter_provider: MeterProvider | None = None,
    registry: CollectorRegistry | None = None,
    tracer_provider: TracerProvider | None = None,
    tracing: bool = True,
) -> Metrics:
    """Instrument ``app`` (idempotent) and return its ``Metrics``.

    Without ``meter_provider`` a provider is built with a Prometheus reader on
    ``registry`` (a fresh one by default). A caller passing its own provider
    passes the registry its Prometheus reader is bound to, if it has one; the
    ``/api/metrics`` view serves that registry.
    """
    existing = app.extensions.get(EXTENSION_KEY)
    if isinstance(existing, Metrics):
        return existing
    if meter_provider is None:
        registry = registry if registry is not None else CollectorRegistry()
        meter_provider = build_meter_provider(registry)
    metrics = Metrics(meter_provider, registry=registry)
    app.extensions[EXTENSION_KEY] = metrics
    register_request_hooks(app, metrics)
    register_metrics_view(app, metrics)
    _instrument_sqlalchemy(app, metrics)
    if tracing:
        init_tracing(app, tracer_provider=tracer_provider)
    return metrics


def _instrument_sqlalchemy(app: Flask, metrics: Metrics) -> None:
    db = app.extensions.get("sqlalchemy")
    if db is None:
        return
    with app.app_context():
        tables: Iterable[str] = [key.rsplit(".", 1)[-1] for key in db.metadata.tables]
        for engine in db.engines.values():
            instrument_engine(engine, metrics, tables)
