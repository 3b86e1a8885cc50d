"""Request spans through opentelemetry-instrumentation-flask.

Every request gets a server span carrying ``http.route``. Spans leave the
process only when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set (OTLP over HTTP);
otherwise they still exist, so the trace id can go into each JSON log line.
The provider is kept on the app, never installed as the global one.
"""

from __future__ import annotations

import os

from flask import Flask
from opentelemetry import trace
from opentelemetry.instrumentation.flask import FlaskInstrumentor
from opentelemetry.metrics import NoOpMeterProvider
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

TRACER_EXTENSION_KEY = "recon_tracer_provider"
# Scrapes and probes every few seconds would drown the useful traces.
DEFAULT_EXCLUDED_URLS = "/api/metrics,/api/health,/api/ready"


def build_tracer_provider(service_name: str = "recon") -> TracerProvider:
    """Return a TracerProvider exporting over OTLP when the endpoint is configured."""
    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        # Imported here: the exporter pulls in protobuf, only worth it when used.
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return provider


def init_tracing(app: Flask, *, tracer_provider: TracerProvider | None = None) -> TracerProvider:
    """Instrument ``app`` for request spans (idempotent); return its tracer provider."""
    existing = app.extensions.get(TRACER_EXTENSION_KEY)
    if isinstance(existing, TracerProvider):
        return existing
    provider = tracer_provider or build_tracer_provider()
    excluded = os.environ.get("OTEL_PYTHON_FLASK_EXCLUDED_URLS", DEFAULT_EXCLUDED_URLS)
    FlaskInstrumentor.instrument_app(
        app,
        tracer_provider=provider,
        # recon's own HTTP metrics carry the agreed names; the instrumentor's
        # http_server_* metrics would duplicate them under other names.
        meter_provider=NoOpMeterProvider(),
        excluded_urls=excluded,
        enable_commenter=False,
    )
    app.extensions[TRACER_EXTENSION_KEY] = provider
    return provider


def current_trace_id() -> str | None:
    """Return the current span's trace id as 32 hex digits, or None outside a span."""
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else None


def current_span_id() -> str | None:
    """Return the current span id as 16 hex digits, or None outside a span."""
    context = trace.get_current_span().get_span_context()
    return format(context.span_id, "016x") if context.is_valid else None
