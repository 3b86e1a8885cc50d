"""OTEL_METRICS_EXPORTER=otlp: N requests reach a real OTLP/HTTP receiver as exactly N,
each process under its own service.instance.id, and a forked copy of an exporter stays silent."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, MetricExportResult

from instrumentation.process import ProcessBoundExporter, process_resource
from recon import create_app
from tests.conftest import app_config, migrate_schema
from tests.instrumentation.otlp import OTLPReceiver
from tests.instrumentation.workers import wait_until
from tests.servers import free_port, server_env

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
HTTP = "reconciliation_http_requests"
HTTP_DURATION = "reconciliation_http_request_duration_seconds"


@pytest.fixture
def receiver() -> Iterator[OTLPReceiver]:
    found = OTLPReceiver()
    yield found
    found.close()


def otlp_env(receiver: OTLPReceiver, interval_ms: int = 60_000) -> dict[str, str]:
    return {
        "OTEL_METRICS_EXPORTER": "otlp",
        "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": f"{receiver.url}/v1/metrics",
        "OTEL_METRIC_EXPORT_INTERVAL": str(interval_ms),
    }


def test_n_requests_reach_the_collector_as_exactly_n(
    tmp_path: Path, receiver: OTLPReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in otlp_env(receiver).items():
        monkeypatch.setenv(name, value)
    app = create_app(app_config(tmp_path, f"sqlite:///{tmp_path / 'otlp.db'}"))
    migrate_schema(app)
    client = app.test_client()
    metrics = app.extensions["recon_metrics"]
    try:
        n = 25
        for pid in range(n):
            assert client.get(f"/api/projects/{pid + 1}").status_code == 401
        metrics.meter_provider.force_flush()
        labels = {"method": "GET", "route": "/api/projects/<int:pid>", "status": "401"}
        (instance,) = receiver.latest(HTTP, **labels)
        assert receiver.latest(HTTP, **labels) == {instance: n}
        duration = {"method": "GET", "route": "/api/projects/<int:pid>"}
        assert receiver.latest(HTTP_DURATION, **duration) == {instance: n}

        # The same counters on the Prometheus side: the two readers agree.
        text = client.get("/api/metrics").get_data(as_text=True)
        assert 'route="/api/projects/<int:pid>",status="401"} 25.0' in text
        (resource,) = receiver.resources()
        assert resource["service.name"] == "recon-web"
        assert resource["process.pid"] == os.getpid()
        assert len(str(resource["service.instance.id"])) == 36  # a UUID
    finally:
        metrics.shutdown()


def test_every_process_gets_its_own_instance_id_and_an_explicit_service_name_wins(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "service.instance.id=shared-by-the-pod")
    first, second = process_resource("recon-web"), process_resource("recon-web")
    ids = {first.attributes["service.instance.id"], second.attributes["service.instance.id"]}
    assert len(ids) == 2 and "shared-by-the-pod" not in ids
    assert first.attributes["service.name"] == "recon-web"
    monkeypatch.setenv("OTEL_SERVICE_NAME", "recon-eu")
    assert process_resource("recon-worker").attributes["service.name"] == "recon-eu"


def test_a_forked_copy_of_the_exporter_sends_nothing(receiver: OTLPReceiver) -> None:
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    provider.get_meter("t").create_counter("forked").add(1)
    data = reader.get_metrics_data()
    assert data is not None
    bound = ProcessBoundExporter(OTLPMetricExporter(endpoint=f"{receiver.url}/v1/metrics"))
    pid = os.fork()
    if pid == 0:  # the child: what a Celery pool child inherits
        os._exit(0 if bound.export(data) == MetricExportResult.SUCCESS else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert receiver.points == []
    assert bound.export(data) == MetricExportResult.SUCCESS  # the parent still exports
    assert receiver.latest("forked") != {}
    bound.shutdown()
    provider.shutdown()


@pytest.mark.slow
def test_two_gunicorn_workers_add_up_exactly_through_the_collector(
    tmp_path: Path, receiver: OTLPReceiver
) -> None:
    """The README's claim: several workers per pod, exact totals, with OTLP to a collector."""
    port = free_port()
    plain = {k: v for k, v in server_env(tmp_path, port).items() if not k.startswith("OTEL_")}
    env = {**plain, **otlp_env(receiver, interval_ms=300)}
    subprocess.run(
        [str(BIN / "flask"), "--app", "wsgi", "db", "upgrade"],
        cwd=ROOT,
        env=plain,  # a process of its own, that would export under its own id
        check=True,
        capture_output=True,
        timeout=120,
    )
    log = (tmp_path / "gunicorn.log").open("wb")
    proc = subprocess.Popen(
        [str(BIN / "gunicorn"), "-c", "ops/gunicorn.conf.py", "--workers", "2", "wsgi:app"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        # Both workers export (their pool gauges at least) once they are up.
        wait_until(lambda: len(receiver.resources("recon-web")) == 2, "two exporting workers", 60)
        n = 60

        def health(_: int) -> int:
            # A connection per request, so both workers take some.
            return requests.get(f"{base}/api/health", timeout=10).status_code

        with ThreadPoolExecutor(max_workers=8) as pool:
            assert list(pool.map(health, range(n))) == [200] * n
        done = time.time()
        # Two exports from each worker after the last request: both have sent everything.
        wait_until(
            lambda: (
                sorted(receiver.exports_since(done).values()) >= [2, 2]
                and len(receiver.exports_since(done)) == 2
            ),
            "two exports per worker",
        )
        per_worker = receiver.latest(HTTP, route="/api/health", status="200")
        assert sum(per_worker.values()) == n
        resources = receiver.resources("recon-web")
        assert len({r["service.instance.id"] for r in resources}) == 2
        assert len({r["process.pid"] for r in resources}) == 2
        # ...while each worker's own /api/metrics shows only its share.
        text = requests.get(f"{base}/api/metrics", timeout=10).text
        assert "reconciliation_http_requests_total" in text
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=40)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
    # Through a collector several workers are the documented way: no warning.
    assert "metrics are per process" not in (tmp_path / "gunicorn.log").read_text()
