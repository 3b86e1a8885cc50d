"""One trace follows a job: the request that posts it, the Celery task, the engine's steps
with their row counts, and the SQL statements, read from the SDK's in-memory exporter.

The worker is a real Celery worker on the real Redis, embedded in this process
(celery.contrib.testing), so every span lands in the same exporter; the forked
worker of tests/instrumentation/test_worker_telemetry.py exports its spans over
OTLP instead.
"""

from __future__ import annotations

import io
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from celery.contrib.testing.worker import start_worker
from flask import Flask
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

import instrumentation
import recon
from recon.extensions import db
from recon.jobs.backlog import backlog_reader
from recon.problems import metrics_unauthorized
from tests.conftest import AuthClient, Factory, app_config, migrate_schema
from tests.instrumentation.workers import (
    FAILING_LEFT,
    FAILING_RIGHT,
    FAILING_RULES,
    private_cache,
)

LEFT = "Reference,Amount,Date\nK1,10.00,2024-01-02\nK2,5.00,2024-01-02\nK3,7.00,2024-01-03\n"
RIGHT = "Reference,Amount,Date\nK1,10.00,2024-01-02\nK2,5.03,2024-01-02\nK4,1.00,2024-01-03\n"
RULES = {
    "passes": [
        {"name": "exact", "match_on": ["key"], "amount_tolerance": {"absolute": "0"}},
        {"name": "tolerant", "match_on": ["key"], "amount_tolerance": {"absolute": "0.05"}},
    ],
    "break_on": ["key"],
}


class Traced:
    """A recon app whose spans all go to one in-memory exporter, and a member of a project."""

    def __init__(self, app: Flask, exporter: InMemorySpanExporter, client: AuthClient, pid: int):
        self.app, self.exporter, self.client, self.pid = app, exporter, client, pid

    def sources(self, left: str, right: str) -> tuple[int, int]:
        ids = []
        for name, text in (("left", left), ("right", right)):
            data = {
                "name": f"{name}-{uuid.uuid4().hex[:6]}",
                "file": (io.BytesIO(text.encode()), "s.csv"),
            }
            response = self.client.post(
                f"/api/projects/{self.pid}/sources", data=data, content_type="multipart/form-data"
            )
            assert response.status_code == 201, response.get_json()
            ids.append(response.get_json()["id"])
        return ids[0], ids[1]

    def post_job(self, rules: dict[str, Any], left: str = LEFT, right: str = RIGHT) -> int:
        left_id, right_id = self.sources(left, right)
        self.exporter.clear()
        body = {"left_source_id": left_id, "right_source_id": right_id, "rules": rules}
        response = self.client.post(f"/api/projects/{self.pid}/jobs", json=body)
        assert response.status_code == 202, response.get_json()
        return int(response.get_json()["id"])

    def wait(self, jid: int) -> dict[str, Any]:
        deadline = time.monotonic() + 60
        while True:
            state = self.client.get(f"/api/projects/{self.pid}/jobs/{jid}").get_json()
            if state["status"] in ("succeeded", "failed", "cancelled"):
                return dict(state)
            assert time.monotonic() < deadline, f"job {jid} still {state['status']}"
            time.sleep(0.1)


def traced_app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **config: Any) -> Iterator[Traced]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))

    def observe(app: Flask) -> None:
        # What create_app does, with spans exported to the test instead of OTLP.
        instrumentation.init_app(
            app,
            tracer_provider=provider,
            unauthorized=metrics_unauthorized,
            backlog=backlog_reader(app),
        )

    monkeypatch.setattr(recon, "register_observability", observe)
    app = recon.create_app(app_config(tmp_path, f"sqlite:///{tmp_path / 'trace.db'}", **config))
    migrate_schema(app)
    with app.app_context():
        factory = Factory(app)
        user = factory.user()
        project = factory.project(members={user: "owner"})
        client = AuthClient(app.test_client(), user, factory.token(user))
        pid = project.id
        db.session.remove()
    yield Traced(app, exporter, client, pid)
    with app.app_context():
        db.engine.dispose()
    provider.shutdown()


def by_name(spans: list[ReadableSpan], name: str) -> list[ReadableSpan]:
    return [s for s in spans if s.name == name]


def one(spans: list[ReadableSpan], name: str) -> ReadableSpan:
    found = by_name(spans, name)
    assert len(found) == 1, f"{len(found)} spans named {name!r}: {sorted({s.name for s in spans})}"
    return found[0]


def parent_id(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


def children(spans: list[ReadableSpan], parent: ReadableSpan) -> list[ReadableSpan]:
    assert parent.context is not None
    return sorted(
        (s for s in spans if parent_id(s) == parent.context.span_id),
        key=lambda s: s.start_time or 0,
    )


@pytest.fixture
def celery_traced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, redis_url: str
) -> Iterator[Traced]:
    gen = traced_app(tmp_path, monkeypatch, RECON_REDIS_URL=redis_url, RECON_JOB_RUNNER="celery")
    traced = next(gen)
    traced.app.extensions["celery"].conf.task_default_queue = f"recon-trace-{uuid.uuid4().hex[:8]}"
    private_cache(traced.app)
    yield traced
    next(gen, None)
    traced.app.extensions["recon_cache"].close()


@pytest.mark.redis
def test_one_trace_follows_a_job_from_its_request_through_celery_to_each_pass(
    celery_traced: Traced,
) -> None:
    celery = celery_traced.app.extensions["celery"]
    with start_worker(celery, perform_ping_check=False, loglevel="WARNING", shutdown_timeout=30):
        jid = celery_traced.post_job(RULES)
        state = celery_traced.wait(jid)
    assert state["status"] == "succeeded", state
    spans = list(celery_traced.exporter.get_finished_spans())

    request = one(spans, "POST /api/projects/<int:pid>/jobs")
    publish = one(spans, "apply_async/recon.run_job")
    task = one(spans, "run/recon.run_job")
    engine = one(spans, "recon.engine")
    assert request.kind == SpanKind.SERVER and publish.kind == SpanKind.PRODUCER
    assert task.kind == SpanKind.CONSUMER
    assert request.context is not None and publish.context is not None
    assert task.context is not None
    # The chain: request -> publish -> (message headers) -> task -> engine -> steps.
    assert parent_id(publish) == request.context.span_id
    assert parent_id(task) == publish.context.span_id
    assert parent_id(engine) == task.context.span_id
    trace_ids = {s.context.trace_id for s in (request, publish, task, engine) if s.context}
    assert len(trace_ids) == 1

    under_engine = children(spans, engine)
    steps = [s for s in under_engine if s.name.startswith("recon.engine.")]
    assert [s.name for s in steps] == [
        "recon.engine.load",
        "recon.engine.pass",
        "recon.engine.pass",
        "recon.engine.breaks",
        "recon.engine.write",
    ]
    load, exact, tolerant, breaks, write = (dict(s.attributes or {}) for s in steps)
    assert load == {"recon.left_rows": 3, "recon.right_rows": 3}
    assert exact["recon.pass.name"] == "exact" and exact["recon.pass.matches"] == 1
    assert (exact["recon.left_rows"], exact["recon.right_rows"]) == (1, 1)
    assert tolerant["recon.pass.name"] == "tolerant" and tolerant["recon.pass.matches"] == 1
    assert tolerant["recon.pass.index"] == 1
    assert breaks == {"recon.breaks": 0}
    assert write == {"recon.result_rows": 6}
    assert dict(engine.attributes or {})["recon.left_rows"] == 3
    # Each step ends as the next begins, all inside the engine span.
    assert engine.start_time is not None and engine.end_time is not None
    for before, after in zip(steps, steps[1:], strict=False):
        assert before.end_time is not None and after.start_time is not None
        assert before.end_time <= after.start_time
    assert all(
        engine.start_time <= (s.start_time or 0) <= (s.end_time or 0) <= engine.end_time
        for s in steps
    )

    # SQL statements: the request's own, and the task's claim and publish under the task.
    sql = [s for s in spans if s.kind == SpanKind.CLIENT]
    task_sql = [s for s in sql if parent_id(s) == task.context.span_id]
    statements = " ".join(str((s.attributes or {}).get("db.statement", "")) for s in task_sql)
    assert "UPDATE jobs" in statements and "INSERT INTO exceptions" in statements
    assert any(parent_id(s) == request.context.span_id for s in sql)
    # The progress the runner writes while the engine runs nests under the engine span.
    engine_sql = [s for s in under_engine if s.kind == SpanKind.CLIENT]
    assert engine_sql
    assert {s.context.trace_id for s in task_sql + engine_sql if s.context} == trace_ids


def test_a_pass_that_fails_marks_its_span_and_the_engine_span(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The inline runner: the job runs inside the POST request, under its span.
    gen = traced_app(tmp_path, monkeypatch, RECON_MAX_CANDIDATES=2)
    traced = next(gen)
    try:
        jid = traced.post_job(FAILING_RULES, FAILING_LEFT, FAILING_RIGHT)
        assert traced.wait(jid)["status"] == "failed"
        spans = list(traced.exporter.get_finished_spans())
        request = one(spans, "POST /api/projects/<int:pid>/jobs")
        engine = one(spans, "recon.engine")
        assert request.context is not None and engine.context is not None
        assert parent_id(engine) == request.context.span_id
        assert engine.status.status_code == StatusCode.ERROR
        load, wide = (s for s in children(spans, engine) if s.name.startswith("recon.engine."))
        assert load.status.status_code == StatusCode.UNSET
        assert wide.status.status_code == StatusCode.ERROR
        assert "candidate" in (wide.status.description or "")
        assert [e.name for e in wide.events] == ["exception"]
    finally:
        next(gen, None)
