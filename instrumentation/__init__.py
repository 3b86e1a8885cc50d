"""recon's observability: OpenTelemetry metrics at ``/api/metrics`` and traces.

``init_app(app)`` gives the app its own ``MeterProvider`` and Prometheus
``CollectorRegistry`` (so two apps in one process never share a series),
declares every instrument once, and hooks Flask requests and the SQLAlchemy
engine; ``instrument_celery(celery, app)`` does the same for Celery tasks and
worker processes (``instrumentation.worker``). Importing this package creates
nothing. Code elsewhere records through the small functions re-exported here,
never through the OTel API.

It imports nothing from the app: what it needs from it (the body of a refused
scrape, how to read the job backlog) comes in as parameters of ``init_app``.

Metrics are exact per process: the shipped gunicorn config runs one worker
process with threads, the provider is built in the worker (after fork), and a
Celery pool child builds its own. ``OTEL_METRICS_EXPORTER=otlp`` adds a push
exporter beside the Prometheus reader (``instrumentation.process``), under a
``service.instance.id`` per process.
"""

from __future__ import annotations

from collections.abc import Iterable

from flask import Flask
from opentelemetry.metrics import MeterProvider
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import CollectorRegistry

from instrumentation.metrics import Backlog, BacklogReader, Metrics
from instrumentation.process import (
    WEB,
    build_meter_provider,
    otlp_metric_exporters,
    process_resource,
)
from instrumentation.recorders import (
    EXTENSION_KEY,
    current_metrics,
    current_route,
    db_query_timer,
    quietly,
    record_auth_attempt,
    record_authz_denied,
    record_engine_duration,
    record_job,
    record_job_error,
    record_queue_wait,
    record_rate_limited,
    record_records_processed,
    record_upload_rejected,
    route_context,
)
from instrumentation.spans import StepSpans, step_spans
from instrumentation.sqla import instrument_engine
from instrumentation.tracing import current_span_id, current_trace_id, init_tracing
from instrumentation.view import UnauthorizedBody, default_unauthorized, register_metrics_view
from instrumentation.web import register_request_hooks
from instrumentation.worker import UNAUTHORIZED_EXTENSION_KEY, instrument_celery

__all__ = [
    "Backlog",
    "Metrics",
    "StepSpans",
    "build_meter_provider",
    "current_metrics",
    "current_route",
    "current_span_id",
    "current_trace_id",
    "db_query_timer",
    "init_app",
    "init_tracing",
    "instrument_celery",
    "record_auth_attempt",
    "record_authz_denied",
    "record_engine_duration",
    "record_job",
    "record_job_error",
    "record_queue_wait",
    "record_rate_limited",
    "record_records_processed",
    "record_upload_rejected",
    "route_context",
    "step_spans",
]


def init_app(
    app: Flask,
    *,
    meter_provider: MeterProvider | None = None,
    registry: CollectorRegistry | None = None,
    tracer_provider: TracerProvider | None = None,
    tracing: bool = True,
    unauthorized: UnauthorizedBody = default_unauthorized,
    backlog: BacklogReader | None = None,
) -> Metrics:
    """Instrument ``app`` (idempotent) and return its ``Metrics``.

    Without ``meter_provider`` a provider is built with a Prometheus reader on
    ``registry`` (a fresh one by default), plus the OTLP reader when
    ``OTEL_METRICS_EXPORTER`` asks for it. A caller passing its own provider
    passes the registry its Prometheus reader is bound to, if it has one; the
    ``/api/metrics`` view serves that registry. ``unauthorized`` returns the
    problem body of a scrape without the metrics token; ``backlog`` reads the
    jobs queued and running (the backlog gauges are left out without it).
    """
    existing = app.extensions.get(EXTENSION_KEY)
    if isinstance(existing, Metrics):
        return existing
    resource = process_resource(WEB)
    if meter_provider is None:
        registry = registry if registry is not None else CollectorRegistry()
        meter_provider = build_meter_provider(
            registry, exporters=otlp_metric_exporters(), resource=resource
        )
    metrics = Metrics(
        meter_provider, registry=registry, backlog=quietly(backlog) if backlog else None
    )
    app.extensions[EXTENSION_KEY] = metrics
    app.extensions[UNAUTHORIZED_EXTENSION_KEY] = unauthorized
    register_request_hooks(app, metrics)
    register_metrics_view(app, metrics, unauthorized=unauthorized)
    _instrument_sqlalchemy(app, metrics)
    if tracing:
        init_tracing(app, tracer_provider=tracer_provider, resource=resource)
    return metrics


def _instrument_sqlalchemy(app: Flask, metrics: Metrics) -> None:
    db = app.extensions.get("sqlalchemy")
    if db is None:
        return
    with app.app_context():
        tables: Iterable[str] = [key.rsplit(".", 1)[-1] for key in db.metadata.tables]
        for engine in db.engines.values():
            instrument_engine(engine, metrics, tables)
