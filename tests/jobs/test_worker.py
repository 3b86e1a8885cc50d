"""Jobs on a real Celery worker, real Redis and real PostgreSQL, including a worker killed mid-job.

These tests commit for real (a worker in another process can't see a rolled-back
transaction), so each builds its own throwaway PostgreSQL database.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from recon import create_app
from recon.extensions import db
from recon.jobs.models import Job
from recon.review.models import ReconException
from tests.conftest import PG_URL, AuthClient, Factory, app_config, migrate_schema, missing_service
from tests.jobs.test_jobs_api import LEFT, RIGHT, RULES

pytestmark = [pytest.mark.slow, pytest.mark.redis, pytest.mark.postgres]
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def world(tmp_path: Path, redis_url: str) -> Iterator[dict]:
    if not PG_URL:
        missing_service("PostgreSQL (RECON_TEST_DATABASE_URL)")
    base = make_url(PG_URL)
    name = f"recon_worker_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = base.set(database=name).render_as_string(hide_password=False)
    queue = f"recon-test-{uuid.uuid4().hex[:8]}"
    config = app_config(
        tmp_path,
        url,
        RECON_REDIS_URL=redis_url,
        RECON_JOB_RUNNER="celery",
        RECON_JOB_VISIBILITY_TIMEOUT=4,
    )
    app = create_app(config)
    app.extensions["celery"].conf.task_default_queue = queue
    migrate_schema(app)
    env = {
        **os.environ,
        "RECON_DATABASE_URL": url,
        "RECON_DATA_DIR": config["RECON_DATA_DIR"],
        "RECON_REDIS_URL": redis_url,
        "RECON_CACHE_NAMESPACE": config["RECON_CACHE_NAMESPACE"],
        "RECON_JOB_VISIBILITY_TIMEOUT": "4",
        "PYTHONPATH": str(ROOT),
    }
    workers: list[subprocess.Popen] = []

    def start_worker(**extra_env: str) -> subprocess.Popen:
        with open(tmp_path / f"worker-{len(workers)}.log", "wb") as log:
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "recon.celery_worker",
                    "worker",
                    "-Q",
                    queue,
                    "--concurrency=1",
                    "--without-gossip",
                    "--without-mingle",
                    "--loglevel=INFO",
                ],
                cwd=ROOT,
                env={**env, **extra_env},
                start_new_session=True,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        workers.append(proc)
        return proc

    with app.app_context():
        factory = Factory(app)
        user = factory.user()
        project = factory.project(members={user: "owner"})
        client = AuthClient(app.test_client(), user, factory.token(user))
        sources = []
        for text, label in ((LEFT, "left"), (RIGHT, "right")):
            data = {"name": label, "file": (io.BytesIO(text.encode()), f"{label}.csv")}
            response = client.post(
                f"/api/projects/{project.id}/sources", data=data, content_type="multipart/form-data"
            )
            sources.append(response.get_json()["id"])
        yield {
            "app": app,
            "client": client,
            "pid": project.id,
            "sources": sources,
            "start_worker": start_worker,
            "tmp": tmp_path,
        }
        db.session.remove()
        db.engine.dispose()
    for proc in workers:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    app.extensions["recon_cache"].close()
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


def wait_for(check, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def job_state(world, jid: int) -> dict:
    return world["client"].get(f"/api/projects/{world['pid']}/jobs/{jid}").get_json()


def post_job(world) -> int:
    left, right = world["sources"]
    response = world["client"].post(
        f"/api/projects/{world['pid']}/jobs",
        json={"left_source_id": left, "right_source_id": right, "rules": RULES},
    )
    assert response.status_code == 202, response.get_json()
    return response.get_json()["id"]


def test_a_real_worker_runs_the_job(world):
    world["start_worker"]()
    jid = post_job(world)
    done = wait_for(
        lambda: (s := job_state(world, jid))["status"] == "succeeded" and s,
        60,
        "the job to succeed",
    )
    assert done["attempt"] == 1 and done["summary"]["left"]["rows"] == 5


def test_worker_killed_mid_job_leaves_exactly_one_set_of_results(world):
    first = world["start_worker"](RECON_JOB_PAUSE_AFTER_CLAIM="60")
    jid = post_job(world)
    wait_for(lambda: job_state(world, jid)["status"] == "running", 60, "the job to be claimed")
    os.killpg(first.pid, signal.SIGKILL)  # the whole worker, children too: no cleanup at all
    first.wait()
    assert job_state(world, jid)["attempt"] == 1
    world["start_worker"]()
    done = wait_for(
        lambda: (s := job_state(world, jid))["status"] == "succeeded" and s,
        90,
        "the redelivered job to succeed",
    )
    assert done["attempt"] == 2
    data = Path(world["app"].config["RECON_DATA_DIR"])
    attempts = sorted(p.name for p in data.rglob("attempt-*"))
    assert attempts == ["attempt-2"]
    with world["app"].app_context():
        exceptions = db.session.query(ReconException).filter_by(job_id=jid).count()
        assert exceptions == 4
        assert db.session.get(Job, jid).result_path.endswith("attempt-2/results.parquet")
    results = world["client"].get(f"/api/projects/{world['pid']}/jobs/{jid}/results").get_json()
    assert results["total"] == 10
