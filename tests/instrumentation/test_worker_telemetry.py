"""A real Celery worker (prefork, as shipped) serves its own metrics, exports them and its
spans over OTLP under its own identity, and stops promptly whatever its listener is doing.

One worker for the module: SQLite file shared with the producing app in this
process, the real Redis (a queue of its own), a real OTLP/HTTP receiver. The
producer posts three jobs (two succeed, one fails in the engine) through its
API, so the request and publish spans are in its in-memory exporter and the
task's spans arrive from the worker's pool child.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import requests
from flask import Flask
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import instrumentation
from recon.jobs.backlog import backlog_reader
from recon.problems import metrics_unauthorized
from tests.instrumentation.conftest import Exposition
from tests.instrumentation.otlp import OTLPReceiver
from tests.instrumentation.test_job_trace import LEFT, RIGHT, RULES
from tests.instrumentation.workers import (
    FAILING_LEFT,
    FAILING_RIGHT,
    FAILING_RULES,
    WorkerRun,
    start_worker,
    wait_until,
)

# Its module-scoped worker is started once: one xdist worker runs the module.
pytestmark = [pytest.mark.slow, pytest.mark.redis, pytest.mark.xdist_group("worker-telemetry")]
TOKEN = "worker-metrics-token"


@dataclass
class World:
    run: WorkerRun
    receiver: OTLPReceiver
    exporter: InMemorySpanExporter
    jobs: dict[str, list[int]]

    @property
    def worker(self) -> subprocess.Popen[bytes]:
        return self.run.process

    @property
    def port(self) -> int:
        return self.run.port

    @property
    def metrics_url(self) -> str:
        return self.run.metrics_url

    def scrape(self, **headers: str) -> requests.Response:
        return self.run.scrape(**headers)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, module_redis_url: str) -> Iterator[World]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    receiver = OTLPReceiver()

    def observe(app: Flask) -> None:
        # The producer's spans (request, publish) to the test; the worker's go over OTLP.
        instrumentation.init_app(
            app,
            tracer_provider=provider,
            unauthorized=metrics_unauthorized,
            backlog=backlog_reader(app),
        )

    run = start_worker(
        tmp_path_factory.mktemp("worker"),
        module_redis_url,
        token=TOKEN,
        observe=observe,
        env={
            "OTEL_METRICS_EXPORTER": "otlp",
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url,
            "OTEL_METRIC_EXPORT_INTERVAL": "300",
            "OTEL_BSP_SCHEDULE_DELAY": "100",
        },
    )
    try:
        run.wait_for_metrics()
        exporter.clear()
        jobs: dict[str, list[int]] = {"succeeded": [], "failed": []}
        for left, right, rules in (
            (LEFT, RIGHT, RULES),
            (LEFT, RIGHT, RULES),
            (FAILING_LEFT, FAILING_RIGHT, FAILING_RULES),
        ):
            jid, status = run.post_and_wait(left, right, rules)
            jobs[status].append(jid)
        yield World(run, receiver, exporter, jobs)
    finally:
        run.close()
        receiver.close()
        provider.shutdown()


def test_the_worker_serves_exact_job_metrics_of_its_own(world: World) -> None:
    assert world.jobs == {"succeeded": world.jobs["succeeded"], "failed": world.jobs["failed"]}
    assert (len(world.jobs["succeeded"]), len(world.jobs["failed"])) == (2, 1)
    response = world.scrape()
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    worker = Exposition(response.text)
    assert worker.value("reconciliation_jobs_total", status="succeeded") == 2
    assert worker.value("reconciliation_jobs_total", status="failed") == 1
    assert worker.value("reconciliation_job_duration_seconds_count") == 3
    assert worker.value("reconciliation_job_queue_wait_seconds_count") == 3
    assert worker.value("reconciliation_engine_duration_seconds_count") == 2
    assert worker.value("reconciliation_records_processed_total", side="left") == 6
    assert worker.value("reconciliation_records_processed_total", side="right") == 6
    task = {"route": "task:recon.run_job", "operation": "update", "table": "jobs"}
    assert worker.value("reconciliation_db_query_duration_seconds_count", **task) >= 3
    # The web process that posted the jobs counted none of this: they ran elsewhere.
    web = Exposition(world.run.client.client.get("/api/metrics").get_data(as_text=True))
    assert "reconciliation_jobs" not in web.families
    assert web.value("reconciliation_jobs_backlog", status="queued") == 0
    assert web.value("reconciliation_jobs_backlog", status="running") == 0


def test_the_worker_listener_wants_the_token_and_serves_only_metrics(world: World) -> None:
    refused = requests.get(world.metrics_url, timeout=5)
    assert refused.status_code == 401
    assert refused.headers["Content-Type"] == "application/problem+json"
    assert refused.headers["WWW-Authenticate"] == 'Bearer realm="metrics"'
    body = refused.json()
    assert body["code"] == "metrics_unauthorized" and body["status"] == 401
    assert "reconciliation_" not in refused.text
    assert requests.get(world.metrics_url.replace("/metrics", "/"), timeout=5).status_code == 404
    openmetrics = world.scrape(Accept="application/openmetrics-text; version=1.0.0")
    assert openmetrics.text.rstrip().endswith("# EOF")


def test_promtool_finds_nothing_on_the_worker_but_the_seed_mandated_gauge_name(
    world: World, promtool: str
) -> None:
    text = world.scrape().text
    assert "reconciliation_db_pool_connections_total" in text
    result = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, check=False
    )
    problems = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    assert all(p.startswith("reconciliation_db_pool_connections_total") for p in problems), problems


def test_otlp_from_the_worker_adds_up_to_its_jobs_under_its_own_instances(world: World) -> None:
    wait_until(
        lambda: sum(world.receiver.latest("reconciliation_jobs", status="succeeded").values()) == 2,
        "the worker's job counts over OTLP",
        timeout=20,
    )
    done = time.time()
    wait_until(lambda: world.receiver.exports_since(done), "another export", timeout=20)
    assert sum(world.receiver.latest("reconciliation_jobs", status="succeeded").values()) == 2
    assert sum(world.receiver.latest("reconciliation_jobs", status="failed").values()) == 1
    resources = world.receiver.resources("recon-worker")
    # The main process and its pool child, each under its own id; none under another's pid.
    pids = {r["service.instance.id"]: r["process.pid"] for r in resources}
    assert len(pids) == len(set(pids.values())) >= 2
    assert world.worker.pid in pids.values()
    assert not world.receiver.resources("recon-web")


def test_the_job_trace_continues_in_the_forked_worker(world: World) -> None:
    published = [
        s for s in world.exporter.get_finished_spans() if s.name == "apply_async/recon.run_job"
    ]
    assert len(published) == 3
    wait_until(
        lambda: len([s for s in world.receiver.spans if s.name == "run/recon.run_job"]) == 3,
        "the worker's task spans",
        timeout=20,
    )
    tasks = {s.parent_span_id: s for s in world.receiver.spans if s.name == "run/recon.run_job"}
    for publish in published:
        assert publish.context is not None
        task = tasks[format(publish.context.span_id, "016x")]
        assert task.trace_id == format(publish.context.trace_id, "032x")
        assert task.resource["service.name"] == "recon-worker"
        assert task.resource["process.pid"] != world.worker.pid  # the pool child
    engines = [s for s in world.receiver.spans if s.name == "recon.engine"]
    assert {e.parent_span_id for e in engines} == {t.span_id for t in tasks.values()}
    passes = [s for s in world.receiver.spans if s.name == "recon.engine.pass"]
    assert {
        (s.attributes["recon.pass.name"], s.attributes.get("recon.pass.matches")) for s in passes
    } >= {
        ("exact", 1),
    }
    assert any(
        s.attributes.get("db.statement", "").startswith("UPDATE jobs") for s in world.receiver.spans
    )


def test_shutdown_is_not_held_up_by_the_listener(world: World) -> None:
    """Last in the module: it stops the worker, with an idle and a half-sent scrape open."""
    idle = socket.create_connection(("127.0.0.1", world.port), timeout=5)
    half = socket.create_connection(("127.0.0.1", world.port), timeout=5)
    half.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
    try:
        started = time.monotonic()
        world.worker.send_signal(signal.SIGTERM)  # Celery's warm shutdown
        world.worker.wait(timeout=30)
        took = time.monotonic() - started
    finally:
        idle.close()
        half.close()
    assert world.worker.returncode == 0, world.run.log.read_text(errors="replace")[-2000:]
    assert took < 10, f"the worker took {took:.1f}s to stop"
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", world.port), timeout=2).close()
