"""Request spans: opentelemetry-instrumentation-flask when spans can leave the process.

Spans leave the process only when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set (OTLP
over HTTP) or the caller passes its own ``TracerProvider``; then every request
gets the instrumentor's server span carrying ``http.route``. Without either,
nothing could ever read a span's attributes, and the instrumentor cost about
200 us per request (a fifth of a small request's time) only to put a trace id in
the log line. So each request then gets a non-recording span instead: the same
W3C ``traceparent`` extraction and the same ids from the same provider, current
for the whole request (log lines and ``current_trace_id`` see it), for a few
microseconds. A request arriving with a sampled parent still records, so flags
propagate unchanged. The provider is kept on the app, never installed globally.
"""

from __future__ import annotations

import os

from flask import Flask, g, request
from opentelemetry import context, propagate, trace
from opentelemetry.instrumentation.flask import FlaskInstrumentor
from opentelemetry.instrumentation.wsgi import wsgi_getter
from opentelemetry.metrics import NoOpMeterProvider
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ParentBased

TRACER_EXTENSION_KEY = "recon_tracer_provider"
# Scrapes and probes every few seconds would drown the useful traces.
DEFAULT_EXCLUDED_URLS = "/api/metrics,/api/health,/api/ready"
_SPAN_STATE = "_recon_correlation_span"


def exporter_configured() -> bool:
    return bool(os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"))


def build_tracer_provider(service_name: str = "recon") -> TracerProvider:
    """Return a TracerProvider exporting over OTLP when the endpoint is configured."""
    resource = Resource.create({"service.name": service_name})
    if not exporter_configured():
        # Nothing to export to: record only what an upstream caller sampled.
        return TracerProvider(resource=resource, sampler=ParentBased(ALWAYS_OFF))
    provider = TracerProvider(resource=resource)
    # Imported here: the exporter pulls in protobuf, only worth it when used.
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return provider


def init_tracing(app: Flask, *, tracer_provider: TracerProvider | None = None) -> TracerProvider:
    """Instrument ``app`` for request spans (idempotent); return its tracer provider."""
    existing = app.extensions.get(TRACER_EXTENSION_KEY)
    if isinstance(existing, TracerProvider):
        return existing
    exporting = tracer_provider is not None or exporter_configured()
    provider = tracer_provider or build_tracer_provider()
    if exporting:
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
    else:
        _correlate_requests(app, provider)
    app.extensions[TRACER_EXTENSION_KEY] = provider
    return provider


def _correlate_requests(app: Flask, provider: TracerProvider) -> None:
    """Make a (normally non-recording) server span current for each request."""
    tracer = provider.get_tracer("recon.instrumentation.tracing")

    def start_span() -> None:
        parent = propagate.extract(request.environ, getter=wsgi_getter)
        span = tracer.start_span("HTTP", context=parent, kind=trace.SpanKind.SERVER)
        token = context.attach(trace.set_span_in_context(span, parent))
        setattr(g, _SPAN_STATE, (span, token))

    def end_span(_exc: BaseException | None) -> None:
        state = g.pop(_SPAN_STATE, None)
        if state is not None:
            span, token = state
            span.end()
            context.detach(token)

    # First, so requests answered by a later hook (401, 429, preflight) get an id too.
    app.before_request_funcs.setdefault(None, []).insert(0, start_span)
    app.teardown_request(end_span)


def current_trace_id() -> str | None:
    """Return the current span's trace id as 32 hex digits, or None outside a span."""
    span_context = trace.get_current_span().get_span_context()
    return format(span_context.trace_id, "032x") if span_context.is_valid else None


def current_span_id() -> str | None:
    """Return the current span id as 16 hex digits, or None outside a span."""
    span_context = trace.get_current_span().get_span_context()
    return format(span_context.span_id, "016x") if span_context.is_valid else None
