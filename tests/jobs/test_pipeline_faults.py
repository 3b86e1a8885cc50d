"""A failure at any step of a job's pipeline ends the attempt (thread runner, SQLite and PG).

RECON_JOB_FAULT raises at the named step of every job; the job must end failed with a
sentence for a person (or, at the invalidation after the commit, stay succeeded), the
runner must log a JSON line with the job id, attempt, step and traceback, the error must
be counted, and the sources pair must take a new job.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from flask import Flask

from recon import create_app
from recon.extensions import db
from recon.jobs.models import Job
from recon.review.models import ReconException
from tests.conftest import AuthClient, Factory, app_config, migrate_schema, throwaway_postgres
from tests.jobs.pipeline import (
    FINISHED,
    assert_sentence,
    failure_lines,
    json_lines,
    metric,
    wait_for,
)
from tests.jobs.test_jobs_api import LEFT, RIGHT, RULES

FAILING_STEPS = ["claim", "engine", "publish", "audit", "commit"]
BEGINS = {
    "claim": "The job could not be started",
    "engine": "The matching engine stopped on an internal error",
    "publish": "The results could not be published as exceptions",
    "audit": "The job's audit record could not be written",
    "commit": "The job's results could not be saved",
}


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'faults.db'}"
        return
    with throwaway_postgres() as url:
        yield url


@dataclass
class World:
    app: Flask
    client: AuthClient
    pid: int
    left: int
    right: int

    def post_job(self) -> int:
        body = {"left_source_id": self.left, "right_source_id": self.right, "rules": RULES}
        response = self.client.post(f"/api/projects/{self.pid}/jobs", json=body)
        assert response.status_code == 202, response.get_json()
        return int(response.get_json()["id"])

    def job(self, jid: int) -> dict:
        return self.client.get(f"/api/projects/{self.pid}/jobs/{jid}").get_json()

    def finished(self, jid: int, timeout: float = 60) -> dict:
        return wait_for(
            lambda: (s := self.job(jid))["status"] in FINISHED and s, timeout, f"job {jid}"
        )

    def attempt_dirs(self) -> list[str]:
        return sorted(p.name for p in Path(self.app.config["RECON_DATA_DIR"]).rglob("attempt-*"))


def thread_world(tmp_path: Path, url: str, **config: object) -> World:
    app = create_app(app_config(tmp_path, url, RECON_JOB_RUNNER="thread", **config))
    migrate_schema(app)
    with app.app_context():
        factory = Factory(app)
        user = factory.user()
        project = factory.project(members={user: "owner"})
        client = AuthClient(app.test_client(), user, factory.token(user))
        ids = []
        for text, name in ((LEFT, "left"), (RIGHT, "right")):
            data = {"name": name, "file": (io.BytesIO(text.encode()), f"{name}.csv")}
            response = client.post(
                f"/api/projects/{project.id}/sources",
                data=data,
                content_type="multipart/form-data",
            )
            assert response.status_code == 201, response.get_json()
            ids.append(response.get_json()["id"])
        world = World(app, client, project.id, ids[0], ids[1])
        db.session.remove()
    return world


@pytest.fixture
def world_at(tmp_path: Path, database: str) -> Iterator:
    made: list[World] = []

    def make(**config: object) -> World:
        made.append(thread_world(tmp_path, database, **config))
        return made[-1]

    yield make
    for world in made:
        with world.app.app_context():
            db.engine.dispose()
        world.app.extensions["recon_cache"].close()


@pytest.mark.parametrize("step", FAILING_STEPS)
def test_a_failure_at_each_step_fails_the_job_with_a_sentence_and_a_log_line(
    world_at, step: str, capsys: pytest.CaptureFixture[str]
) -> None:
    world = world_at(RECON_JOB_FAULT=step)
    jid = world.post_job()
    done = world.finished(jid)
    assert done["status"] == "failed"
    assert done["error"].startswith(BEGINS[step])
    assert_sentence(done["error"], jid)
    lines = failure_lines(json_lines(capsys.readouterr().out), jid, step)
    assert len(lines) == 1, lines
    line = lines[0]
    assert line["level"] == "ERROR" and line["transient"] is False
    assert line["attempt"] == (None if step == "claim" else 1)
    assert "Traceback" in line["exception"] and "InjectedFault" in line["exception"]
    assert metric(world.client, "reconciliation_job_errors_total", step=step) == 1
    assert metric(world.client, "reconciliation_jobs_total", status="failed") == 1
    with world.app.app_context():
        assert db.session.query(ReconException).filter_by(job_id=jid).count() == 0
        job = db.session.get(Job, jid)
        assert job.result_path is None and job.finished_at is not None
    assert world.attempt_dirs() == []  # the attempt left no files
    # The pair is free again: without the fault a new job on it runs to the end.
    world.app.config["RECON_JOB_FAULT"] = None
    again = world.post_job()
    assert world.finished(again)["status"] == "succeeded"


def test_a_failed_invalidation_leaves_the_published_job_succeeded_and_logged(
    world_at, capsys: pytest.CaptureFixture[str]
) -> None:
    world = world_at(RECON_JOB_FAULT="invalidation")
    jid = world.post_job()
    done = world.finished(jid)
    assert done["status"] == "succeeded" and done["error"] is None
    with world.app.app_context():
        assert db.session.query(ReconException).filter_by(job_id=jid).count() == 4
    lines = failure_lines(json_lines(capsys.readouterr().out), jid, "invalidation")
    assert len(lines) == 1 and lines[0]["attempt"] == 1
    assert "InjectedFault" in lines[0]["exception"]
    assert metric(world.client, "reconciliation_job_errors_total", step="invalidation") == 1
    assert metric(world.client, "reconciliation_jobs_total", status="succeeded") == 1


def test_a_transient_failure_on_the_thread_runner_fails_the_job_saying_so(
    world_at, capsys: pytest.CaptureFixture[str]
) -> None:
    world = world_at(RECON_JOB_FAULT="publish:transient")
    jid = world.post_job()
    done = world.finished(jid)
    assert done["status"] == "failed" and done["attempt"] == 1
    assert "the database was not reachable" in done["error"]
    assert_sentence(done["error"], jid)
    lines = failure_lines(json_lines(capsys.readouterr().out), jid, "publish")
    assert len(lines) == 1 and lines[0]["transient"] is True
    with world.app.app_context():
        assert db.session.query(ReconException).filter_by(job_id=jid).count() == 0
