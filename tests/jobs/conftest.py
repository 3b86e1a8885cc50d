"""The real-worker world: a throwaway PostgreSQL database, real Redis, Celery workers on demand.

These tests commit for real (a worker in another process can't see a rolled-back
transaction), so each world builds its own PostgreSQL database.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from recon import create_app
from recon.extensions import db
from tests.conftest import PG_URL, AuthClient, Factory, app_config, migrate_schema, missing_service
from tests.jobs.test_jobs_api import LEFT, RIGHT, RULES

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
