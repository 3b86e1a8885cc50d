"""The job backlog gauges: what waits and runs now, read from the database at each scrape."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from recon.db_types import utcnow
from recon.extensions import db
from recon.jobs.backlog import backlog_reader
from recon.jobs.models import Job, JobStatus

QUEUED = {"status": "queued"}
RUNNING = {"status": "running"}
OLDEST = "reconciliation_jobs_oldest_queued_age_seconds"


def add_job(project: Any, left: Any, right: Any, status: JobStatus, age: float) -> Job:
    job = Job(
        project_id=project.id,
        left_source_id=left.id,
        right_source_id=right.id,
        rules={"passes": []},
        status=status,
        created_at=utcnow() - timedelta(seconds=age),
    )
    db.session.add(job)
    db.session.commit()
    return job


def test_the_backlog_counts_waiting_and_running_jobs_and_the_oldest_wait(
    client: FlaskClient, factory: Any, scrape: Callable[..., Any]
) -> None:
    empty = scrape(client)
    assert empty.value("reconciliation_jobs_backlog", **QUEUED) == 0
    assert empty.value(OLDEST) == 0
    user = factory.user()
    project = factory.project(members={user: "owner"})
    a, b, c = (factory.source(project, user, name=n) for n in "abc")
    add_job(project, a, b, JobStatus.queued, age=90)
    add_job(project, b, c, JobStatus.queued, age=5)
    add_job(project, a, c, JobStatus.running, age=300)
    add_job(project, c, a, JobStatus.succeeded, age=900)

    exposition = scrape(client)
    assert exposition.families["reconciliation_jobs_backlog"].type == "gauge"
    assert exposition.value("reconciliation_jobs_backlog", **QUEUED) == 2
    assert exposition.value("reconciliation_jobs_backlog", **RUNNING) == 1
    assert 90 <= exposition.value(OLDEST) < 120


def test_a_database_that_does_not_answer_drops_the_backlog_not_the_scrape(
    tmp_path: Any, caplog: pytest.LogCaptureFixture
) -> None:
    from recon import create_app
    from tests.conftest import app_config

    # No migrations: the jobs table does not exist, so the backlog query fails.
    app = create_app(app_config(tmp_path, f"sqlite:///{tmp_path / 'none.db'}"))
    response = app.test_client().get("/api/metrics")
    assert response.status_code == 200
    assert "reconciliation_jobs_backlog" not in response.get_data(as_text=True)
    assert "job backlog not read" in caplog.text
    assert backlog_reader(app)() is None


def test_an_app_without_a_backlog_reader_has_no_backlog_gauges(
    mini_app_factory: Callable[..., tuple[Flask, Any]],
) -> None:
    import instrumentation

    app, _ = mini_app_factory()
    instrumentation.init_app(app)
    text = app.test_client().get("/api/metrics").get_data(as_text=True)
    assert "reconciliation_jobs_backlog" not in text


def test_queue_wait_is_the_first_claim_minus_the_creation(
    app: Flask, client: FlaskClient, scrape: Callable[..., Any]
) -> None:
    from instrumentation import record_queue_wait

    count = "reconciliation_job_queue_wait_seconds_count"
    total = "reconciliation_job_queue_wait_seconds_sum"
    before = scrape(client)
    created = utcnow()
    with app.app_context():
        record_queue_wait(attempt=1, queued_at=created, claimed_at=created + timedelta(seconds=42))
        # A redelivered job's later claims are not a wait for a worker.
        record_queue_wait(attempt=2, queued_at=created, claimed_at=created + timedelta(hours=1))
    after = scrape(client)
    assert after.value(count) - before.value(count) == 1
    assert after.value(total) - before.value(total) == pytest.approx(42)
    bucket = "reconciliation_job_queue_wait_seconds_bucket"
    assert after.value(bucket, le="30.0") == before.value(bucket, le="30.0")
    assert after.value(bucket, le="60.0") - before.value(bucket, le="60.0") == 1
