"""Spans: requests (opentelemetry-instrumentation-flask), SQL statements and Celery tasks.

Spans leave the process only when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set (OTLP
over HTTP) or the caller passes its own ``TracerProvider``; then every request
gets the instrumentor's server span carrying ``http.route`` and every SQL
statement a client span (opentelemetry-instrumentation-sqlalchemy). Without
either, nothing could ever read a span's attributes, and the Flask instrumentor
cost about 200 us per request (a fifth of a small request's time) only to put a
trace id in the log line. So each request then gets a non-recording span
instead: the same W3C ``traceparent`` extraction and the same ids from the same
provider, current for the whole request (log lines and ``current_trace_id`` see
it), for a few microseconds. A request arriving with a sampled parent still
records, so flags propagate unchanged. The provider is kept on the app, never
installed globally.

Celery's and SQLAlchemy's instrumentations keep the tracer they are given, and
a Celery pool child replaces the provider it inherited from its parent (whose
resource names the parent process): they get an ``AppTracerProvider``, whose
tracers start each span from the app's provider of the moment.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from flask import Flask, g, request
from opentelemetry import context, propagate, trace
from opentelemetry.instrumentation.flask import FlaskInstrumentor
from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer
from opentelemetry.instrumentation.wsgi import wsgi_getter
from opentelemetry.metrics import NoOpMeterProvider, NoOpUpDownCounter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ParentBased
from opentelemetry.util.types import Attributes

from instrumentation.process import WEB, process_resource

TRACER_EXTENSION_KEY = "recon_tracer_provider"
EXPORTING_EXTENSION_KEY = "recon_spans_exported"
TRACER_NAME = "recon.instrumentation"
# Scrapes and probes every few seconds would drown the useful traces.
DEFAULT_EXCLUDED_URLS = "/api/metrics,/api/health,/api/ready"
_SPAN_STATE = "_recon_correlation_span"
_SQL_TRACED_ATTR = "_recon_sql_traced"


def exporter_configured() -> bool:
    return bool(os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"))


def build_tracer_provider(resource: Resource | None = None) -> TracerProvider:
    """Return a TracerProvider exporting over OTLP when the endpoint is configured."""
    resource = resource or process_resource(WEB)
    if not exporter_configured():
        # Nothing to export to: record only what an upstream caller sampled.
        return TracerProvider(resource=resource, sampler=ParentBased(ALWAYS_OFF))
    provider = TracerProvider(resource=resource)
    # Imported here: the exporter pulls in protobuf, only worth it when used.
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return provider


def init_tracing(
    app: Flask, *, tracer_provider: TracerProvider | None = None, resource: Resource | None = None
) -> TracerProvider:
    """Instrument ``app`` for request and SQL spans (idempotent); return its tracer provider."""
    existing = app.extensions.get(TRACER_EXTENSION_KEY)
    if isinstance(existing, TracerProvider):
        return existing
    exporting = tracer_provider is not None or exporter_configured()
    provider = tracer_provider or build_tracer_provider(resource)
    app.extensions[TRACER_EXTENSION_KEY] = provider
    app.extensions[EXPORTING_EXTENSION_KEY] = exporting
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
        _trace_sql(app)
    else:
        _correlate_requests(app, provider)
    return provider


def replace_tracer_provider(app: Flask, provider: TracerProvider) -> None:
    """Give ``app`` a new provider (a forked process's own) and stop the one it replaces."""
    previous = app.extensions.get(TRACER_EXTENSION_KEY)
    app.extensions[TRACER_EXTENSION_KEY] = provider
    if isinstance(previous, TracerProvider) and previous is not provider:
        # Its batch queue was emptied by the fork: nothing of the parent's is sent.
        previous.shutdown()


def spans_exported(app: Flask) -> bool:
    """Whether ``app``'s spans can leave the process (an exporter or a caller's provider)."""
    return bool(app.extensions.get(EXPORTING_EXTENSION_KEY))


def _trace_sql(app: Flask) -> None:
    """A client span per SQL statement on each of the app's engines (once per engine)."""
    db = app.extensions.get("sqlalchemy")
    if db is None:
        return
    tracer = AppTracerProvider(app).get_tracer("opentelemetry.instrumentation.sqlalchemy")
    with app.app_context():
        for engine in db.engines.values():
            if getattr(engine, _SQL_TRACED_ATTR, False):
                continue
            # Per engine rather than SQLAlchemyInstrumentor().instrument(): that one is
            # process-wide (it patches create_engine and traces every later engine with
            # the first caller's provider), while recon keeps a provider per app.
            # Its connection-usage counter would duplicate recon's pool gauges.
            EngineTracer(tracer, engine, NoOpUpDownCounter("db.client.connections.usage"))
            setattr(engine, _SQL_TRACED_ATTR, True)


class AppTracerProvider(trace.TracerProvider):
    """Hands out tracers that start each span from ``app``'s tracer provider of the moment."""

    def __init__(self, app: Flask) -> None:
        self.app = app

    def get_tracer(
        self,
        instrumenting_module_name: str,
        instrumenting_library_version: str | None = None,
        schema_url: str | None = None,
        attributes: Attributes = None,
    ) -> trace.Tracer:
        return _AppTracer(
            self.app,
            (instrumenting_module_name, instrumenting_library_version, schema_url, attributes),
        )


class _AppTracer(trace.Tracer):
    def __init__(self, app: Flask, args: tuple[Any, ...]) -> None:
        self._app = app
        self._args = args
        self._provider: trace.TracerProvider | None = None
        self._tracer: trace.Tracer = trace.NoOpTracer()

    def _current(self) -> trace.Tracer:
        provider = self._app.extensions.get(TRACER_EXTENSION_KEY)
        if provider is not self._provider:
            self._provider = provider
            self._tracer = provider.get_tracer(*self._args) if provider else trace.NoOpTracer()
        return self._tracer

    def start_span(self, *args: Any, **kwargs: Any) -> trace.Span:
        return self._current().start_span(*args, **kwargs)

    @contextmanager
    def start_as_current_span(self, *args: Any, **kwargs: Any) -> Iterator[trace.Span]:  # type: ignore[override]
        with self._current().start_as_current_span(*args, **kwargs) as span:
            yield span


def app_tracer(app: Flask) -> trace.Tracer:
    """Return recon's own tracer on ``app`` (engine steps and the like)."""
    return AppTracerProvider(app).get_tracer(TRACER_NAME)


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
