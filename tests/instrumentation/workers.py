"""A real Celery worker for tests: the app that posts jobs runs in this process, the worker
(prefork, one pool child, as ops/k8s ships it) in another, on a SQLite file both open, the
real Redis and a queue of its own."""

from __future__ import annotations

import io
import os
import subprocess
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
from flask import Flask

import recon
from recon.cache import EXTENSION_KEY as CACHE_KEY
from recon.cache import AppCacheMetrics, CacheService
from recon.extensions import db
from tests.conftest import AuthClient, Factory, app_config, migrate_schema
from tests.servers import free_port, start_celery_worker

ROOT = Path(__file__).resolve().parents[2]
# 3 x 3 records on one key within the tolerance: 9 candidate pairs, over the
# RECON_MAX_CANDIDATES=2 the workers here run with, so this job fails in the engine.
FAILING_LEFT = "reference,amount,date\nK2,1.00,2024-01-02\nK2,2.00,2024-01-02\nK2,3.00,2024-01-02\n"
FAILING_RIGHT = (
    "reference,amount,date\nK2,1.00,2024-01-03\nK2,2.00,2024-01-03\nK2,4.00,2024-01-03\n"
)
FAILING_RULES = {
    "passes": [{"name": "wide", "match_on": ["key"], "amount_tolerance": {"absolute": "5"}}]
}


def wait_until(
    check: Callable[[], Any], what: str, timeout: float = 90.0, log: Path | None = None
) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = check()
        except (requests.RequestException, OSError):
            value = None
        if value:
            return value
        time.sleep(0.2)
    tail = log.read_text(errors="replace")[-3000:] if log and log.exists() else ""
    raise AssertionError(f"timed out waiting for {what}\n{tail}")


@dataclass
class WorkerRun:
    producer: Flask
    client: AuthClient
    pid: int
    process: subprocess.Popen[bytes]
    log: Path
    port: int
    token: str

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/metrics"

    def scrape(self, **headers: str) -> requests.Response:
        auth = {"Authorization": f"Bearer {self.token}"}
        return requests.get(self.metrics_url, headers={**auth, **headers}, timeout=5)

    def wait_for_metrics(self) -> None:
        def up() -> bool:
            assert self.process.poll() is None, self.log.read_text(errors="replace")[-3000:]
            return self.scrape().status_code == 200

        wait_until(up, "the worker's /metrics", log=self.log)

    def post_and_wait(self, left: str, right: str, rules: dict[str, Any]) -> tuple[int, str]:
        """Upload both sides (or reuse them), post a job, wait for it; return id and status."""
        ids = []
        for side, text in (("left", left), ("right", right)):
            data = {
                "name": f"{side}-{uuid.uuid4().hex[:6]}",
                "file": (io.BytesIO(text.encode()), "s.csv"),
            }
            response = self.client.post(
                f"/api/projects/{self.pid}/sources", data=data, content_type="multipart/form-data"
            )
            assert response.status_code in (201, 409), response.get_json()
            body = response.get_json()
            ids.append(body["id"] if response.status_code == 201 else body["existing_source_id"])
        response = self.client.post(
            f"/api/projects/{self.pid}/jobs",
            json={"left_source_id": ids[0], "right_source_id": ids[1], "rules": rules},
        )
        assert response.status_code == 202, response.get_json()
        jid = int(response.get_json()["id"])

        def finished() -> str | None:
            status = self.client.get(f"/api/projects/{self.pid}/jobs/{jid}").get_json()["status"]
            return status if status in ("succeeded", "failed", "cancelled") else None

        return jid, str(wait_until(finished, f"job {jid}", log=self.log))

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.producer.extensions["recon_cache"].close()
        with self.producer.app_context():
            db.engine.dispose()


def private_cache(app: Flask) -> None:
    """Give ``app`` an in-process cache only (1 s entries), writing nothing to Redis.

    Every test app on the test Redis database shares its keys: one test's
    ``job:1`` would answer the next test's ``GET .../jobs/1`` from another
    database. The worker under test only deletes keys, and this app sees its
    own writes; a one-second life covers the invalidations it no longer hears.
    """
    app.extensions[CACHE_KEY].close()
    app.extensions[CACHE_KEY] = CacheService(None, metrics=AppCacheMetrics(app), ttl=1)


def start_worker(
    tmp: Path,
    redis_url: str,
    *,
    token: str,
    env: dict[str, str] | None = None,
    observe: Callable[[Flask], None] | None = None,
) -> WorkerRun:
    """Build the producing app (``observe`` replaces its register_observability), start a worker."""
    database = f"sqlite:///{tmp / 'worker.db'}"
    queue = f"recon-test-{uuid.uuid4().hex[:8]}"
    config = app_config(tmp, database, RECON_REDIS_URL=redis_url, RECON_JOB_RUNNER="celery")
    original = recon.register_observability
    if observe is not None:
        recon.register_observability = observe  # type: ignore[assignment]
    try:
        producer = recon.create_app(config)
    finally:
        recon.register_observability = original  # type: ignore[assignment]
    producer.extensions["celery"].conf.task_default_queue = queue
    private_cache(producer)
    migrate_schema(producer)
    port = free_port()
    log = tmp / "worker.log"
    worker_env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("RECON_", "OTEL_"))},
        "PYTHONPATH": str(ROOT),
        "RECON_DATABASE_URL": database,
        "RECON_DATA_DIR": config["RECON_DATA_DIR"],
        "RECON_REDIS_URL": redis_url,
        "RECON_CACHE_NAMESPACE": config["RECON_CACHE_NAMESPACE"],
        "RECON_MAX_CANDIDATES": "2",
        "RECON_METRICS_TOKEN": token,
        "RECON_WORKER_METRICS_PORT": str(port),
        "RECON_BIND_HOST": "127.0.0.1",
        **(env or {}),
    }
    with log.open("wb") as out:
        process = start_celery_worker(queue, worker_env, out)
    with producer.app_context():
        factory = Factory(producer)
        user = factory.user()
        project = factory.project(members={user: "owner"})
        client = AuthClient(producer.test_client(), user, factory.token(user))
        pid = project.id
        db.session.remove()
    return WorkerRun(producer, client, pid, process, log, port, token)
