"""Worlds for job tests: a thread-runner app on SQLite or PostgreSQL (``world_at``), and
the real-worker world (``world``): a throwaway PostgreSQL database, real Redis, Celery workers.

These tests commit for real (a worker in another process can't see a rolled-back
transaction), so each world builds its own PostgreSQL database.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask
from sqlalchemy.engine import make_url

from recon import create_app
from recon.extensions import db
from tests.conftest import (
    PG_URL,
    AuthClient,
    Factory,
    app_config,
    migrate_schema,
    missing_service,
    throwaway_postgres,
)
from tests.jobs.pipeline import FINISHED, wait_for
from tests.jobs.test_jobs_api import LEFT, RIGHT, RULES
from tests.servers import start_celery_worker

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
        RECON_JOB_QUEUE=queue,
    )
    app = create_app(config)
    migrate_schema(app)
    env = {
        **os.environ,
        "RECON_DATABASE_URL": url,
        "RECON_DATA_DIR": config["RECON_DATA_DIR"],
        "RECON_REDIS_URL": redis_url,
        "RECON_CACHE_NAMESPACE": config["RECON_CACHE_NAMESPACE"],
        "RECON_JOB_VISIBILITY_TIMEOUT": "4",
        "RECON_JOB_QUEUE": queue,
        "PYTHONPATH": str(ROOT),
    }
    workers: list[subprocess.Popen] = []

    def start_worker(**extra_env: str) -> subprocess.Popen:
        with open(tmp_path / f"worker-{len(workers)}.log", "wb") as log:
            proc = start_celery_worker(queue, {**env, **extra_env}, log, own_session=True)
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
