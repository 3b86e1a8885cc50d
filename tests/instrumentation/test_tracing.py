"""Every request gets a server span named after its URL rule."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import jsonify
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import instrumentation
from instrumentation import current_trace_id


def test_request_span_carries_the_route_and_its_trace_id(
    mini_app_factory: Callable[..., Any],
) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    app, _ = mini_app_factory()

    @app.get("/trace-me/<int:n>")
    def trace_me(n: int) -> Any:
        return jsonify(trace_id=current_trace_id(), n=n)

    instrumentation.init_app(app, tracer_provider=provider)
    instrumentation.init_app(app, tracer_provider=provider)  # idempotent: one span per request
    client = app.test_client()
    body = client.get("/trace-me/42").get_json()
    client.get("/api/metrics")  # scrapes are not traced

    spans = exporter.get_finished_spans()
    assert len(spans) == 1
    span = spans[0]
    assert span.attributes is not None
    assert span.attributes.get("http.route") == "/trace-me/<int:n>"
    assert body["trace_id"] == format(span.context.trace_id, "032x")
    assert current_trace_id() is None  # outside the request there is no span
