"""A real OTLP/HTTP receiver for tests: what a collector gets, decoded with opentelemetry-proto.

It accepts ``POST /v1/metrics`` and ``POST /v1/traces`` (protobuf, gzip or not),
keeps every request, and answers like a collector. ``latest`` reads cumulative
points the way a collector's Prometheus exporter would: the newest point of
each series of each process (``service.instance.id``), so adding them across
processes gives the total.
"""

from __future__ import annotations

import gzip
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue


def value(any_value: AnyValue) -> Any:
    kind = any_value.WhichOneof("value")
    return getattr(any_value, kind) if kind else None


def attributes(pairs: Any) -> dict[str, Any]:
    return {kv.key: value(kv.value) for kv in pairs if isinstance(kv, KeyValue)}


@dataclass(frozen=True)
class Point:
    """One data point as received: who sent it, which series, its value, when."""

    resource: dict[str, Any]
    metric: str
    labels: dict[str, Any]
    value: float
    time_unix_nano: int
    received_at: float

    @property
    def instance(self) -> str:
        return str(self.resource.get("service.instance.id"))


@dataclass(frozen=True)
class ReceivedSpan:
    resource: dict[str, Any]
    name: str
    trace_id: str
    span_id: str
    parent_span_id: str
    attributes: dict[str, Any]


@dataclass
class OTLPReceiver:
    points: list[Point] = field(default_factory=list)
    spans: list[ReceivedSpan] = field(default_factory=list)
    exports: list[tuple[float, str]] = field(default_factory=list)  # (time, instance id)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                return None

            def do_POST(self) -> None:  # noqa: N802 - the handler's protocol
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                if self.path == "/v1/metrics":
                    request = ExportMetricsServiceRequest.FromString(body)
                    receiver.take_metrics(request)
                    answer = ExportMetricsServiceResponse().SerializeToString()
                elif self.path == "/v1/traces":
                    receiver.take_traces(ExportTraceServiceRequest.FromString(body))
                    answer = ExportTraceServiceResponse().SerializeToString()
                else:
                    self.send_response(404)
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # -- decoding -------------------------------------------------------------

    def take_metrics(self, request: ExportMetricsServiceRequest) -> None:
        now = time.time()
        points = []
        instances = set()
        for resource_metrics in request.resource_metrics:
            resource = attributes(resource_metrics.resource.attributes)
            instances.add(str(resource.get("service.instance.id")))
            for scope in resource_metrics.scope_metrics:
                for metric in scope.metrics:
                    for labels, number, at in _data_points(metric):
                        points.append(Point(resource, metric.name, labels, number, at, now))
        with self.lock:
            self.points.extend(points)
            self.exports.extend((now, instance) for instance in instances)

    def take_traces(self, request: ExportTraceServiceRequest) -> None:
        spans = []
        for resource_spans in request.resource_spans:
            resource = attributes(resource_spans.resource.attributes)
            for scope in resource_spans.scope_spans:
                for span in scope.spans:
                    spans.append(
                        ReceivedSpan(
                            resource,
                            span.name,
                            span.trace_id.hex(),
                            span.span_id.hex(),
                            span.parent_span_id.hex(),
                            attributes(span.attributes),
                        )
                    )
        with self.lock:
            self.spans.extend(spans)

    # -- reading --------------------------------------------------------------

    def latest(self, metric: str, **labels: Any) -> dict[str, float]:
        """Return per process the newest value of ``metric``, summed over series with ``labels``."""
        newest: dict[tuple[str, frozenset[tuple[str, Any]]], Point] = {}
        with self.lock:
            points = list(self.points)
        for point in points:
            if point.metric != metric or any(point.labels.get(k) != v for k, v in labels.items()):
                continue
            key = (point.instance, frozenset(point.labels.items()))
            if key not in newest or point.time_unix_nano >= newest[key].time_unix_nano:
                newest[key] = point
        totals: dict[str, float] = {}
        for (instance, _), point in newest.items():
            totals[instance] = totals.get(instance, 0.0) + point.value
        return totals

    def resources(self, service_name: str | None = None) -> list[dict[str, Any]]:
        """Return the distinct resources that sent metrics (optionally of one service)."""
        seen: dict[str, dict[str, Any]] = {}
        with self.lock:
            for point in self.points:
                if service_name is None or point.resource.get("service.name") == service_name:
                    seen[point.instance] = point.resource
        return list(seen.values())

    def exports_since(self, moment: float) -> dict[str, int]:
        """Return how many exports each process made after ``moment``."""
        counts: dict[str, int] = {}
        with self.lock:
            for at, instance in self.exports:
                if at > moment:
                    counts[instance] = counts.get(instance, 0) + 1
        return counts


def _data_points(metric: Any) -> Iterator[tuple[dict[str, Any], float, int]]:
    """(labels, value, time) of each point: sums and gauges their value, histograms their count."""
    kind = metric.WhichOneof("data")
    if kind in ("sum", "gauge"):
        for p in getattr(metric, kind).data_points:
            number = p.as_int if p.WhichOneof("value") == "as_int" else p.as_double
            yield attributes(p.attributes), float(number), int(p.time_unix_nano)
    elif kind == "histogram":
        for p in metric.histogram.data_points:
            yield attributes(p.attributes), float(p.count), int(p.time_unix_nano)
