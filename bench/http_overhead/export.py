"""What the other export paths cost, on the registry the scrape benchmark fills.

* the worker's own listener (``instrumentation.listener``) against
  ``/api/metrics`` through the app: the same exposition behind another server;
* one OTLP/HTTP export (collect, encode to protobuf, POST to a local sink that
  reads the body and answers 200), what ``OTEL_METRICS_EXPORTER=otlp`` does every
  ``OTEL_METRIC_EXPORT_INTERVAL`` (60 s) per process.

The per-request cost of the OTLP reader (each measurement also lands in its
storage) is the ``metrics+traces+otlp`` mode of the in-process comparison.
"""

from __future__ import annotations

import gc
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import requests

from instrumentation.listener import MetricsListener


class _Sink(BaseHTTPRequestHandler):
    received = 0

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        return None

    def do_POST(self) -> None:  # noqa: N802
        _Sink.received += len(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()


@contextmanager
def otlp_sink() -> Iterator[str]:
    """A local OTLP/HTTP endpoint that accepts everything; yields its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Sink)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def otlp_environment(endpoint: str) -> Iterator[None]:
    """OTEL_METRICS_EXPORTER=otlp to ``endpoint``, with no export due during a benchmark."""
    values = {
        "OTEL_METRICS_EXPORTER": "otlp",
        "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": f"{endpoint}/v1/metrics",
        "OTEL_METRIC_EXPORT_INTERVAL": str(24 * 3600 * 1000),
    }
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def export_costs(tmp: Path, repeats: int, build: Any, fill: Any, endpoint: str) -> None:
    """Print the worker listener's scrape against the app's, and one OTLP export to ``endpoint``."""
    with otlp_environment(endpoint):
        app, _ = build(tmp, "export")
    metrics: Any = app.extensions["recon_metrics"]
    fill(metrics)
    listener = MetricsListener(metrics, host="127.0.0.1", port=0).start()
    client = app.test_client()
    gc.collect()
    gc.freeze()
    app_times, listener_times = [], []
    with requests.Session() as session:
        session.get(f"http://127.0.0.1:{listener.port}/metrics", timeout=10)
        for _ in range(repeats):
            t0 = time.perf_counter()
            client.get("/api/metrics")
            app_times.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            body = session.get(f"http://127.0.0.1:{listener.port}/metrics", timeout=10).content
            listener_times.append(time.perf_counter() - t0)
    listener.stop()
    ratio = pct(listener_times, 0.5) / pct(app_times, 0.5)
    print(
        f"scrape of the worker listener: {len(body) / 1024:.0f} KiB; p50 "
        f"{pct(listener_times, 0.5) * 1e3:.1f} ms, max {max(listener_times) * 1e3:.1f} ms; "
        f"/api/metrics in-process p50 {pct(app_times, 0.5) * 1e3:.1f} ms; ratio {ratio:.2f}"
    )
    _Sink.received = 0
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        metrics.meter_provider.force_flush()  # collect, encode, POST: one periodic export
        times.append(time.perf_counter() - t0)
    sent = _Sink.received / repeats
    metrics.shutdown()
    share = pct(times, 0.5) / 60 * 100
    print(
        f"OTLP/HTTP export of the same registry: {sent / 1024:.0f} KiB protobuf; p50 "
        f"{pct(times, 0.5) * 1e3:.1f} ms, max {max(times) * 1e3:.1f} ms over {repeats}; "
        f"at the default 60 s interval {share:.3f} % of one core"
    )
