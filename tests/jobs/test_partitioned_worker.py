"""A partitioned job on real Celery workers: a chord of parts, one answer, a worker lost mid-map.

Real Redis, real PostgreSQL, real worker processes. The sources have 5 records a side;
RECON_PARTITION_ROWS=2 and RECON_JOB_PARTITIONS=3 make the job run in three parts.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from recon.engine import run_reconciliation
from recon.extensions import db
from recon.jobs.models import Job
from recon.review.models import ReconException
from recon.sources.models import Source
from tests.jobs.conftest import job_state, post_job
from tests.jobs.pipeline import wait_for
from tests.jobs.test_jobs_api import RULES

pytestmark = [pytest.mark.slow, pytest.mark.redis, pytest.mark.postgres]

PARTS = {"RECON_PARTITION_ROWS": "2", "RECON_JOB_PARTITIONS": "3"}


def _single_run(world, tmp: Path) -> tuple[bytes, dict]:
    """The results file and summary of the same job run in one piece, by the engine itself."""
    app = world["app"]
    storage = app.extensions["recon_storage"]
    with app.app_context():
        left, right = (db.session.get(Source, s) for s in world["sources"])
        out = tmp / "single.parquet"
        summary = run_reconciliation(storage.path(left.path), storage.path(right.path), RULES, out)
    return out.read_bytes(), summary


def _results(world, jid: int) -> tuple[bytes, int]:
    app = world["app"]
    with app.app_context():
        job = db.session.get(Job, jid)
        data = app.extensions["recon_storage"].path(job.result_path).read_bytes()
        exceptions = db.session.query(ReconException).filter_by(job_id=jid).count()
        db.session.remove()
    return data, exceptions


def test_a_partitioned_job_survives_a_worker_killed_mid_map(world, tmp_path):
    # A holds its part (paused) past the point where B has done the other two; the
    # visibility timeout is longer than the pause would need, so only the kill frees it.
    redeliver = {"RECON_JOB_VISIBILITY_TIMEOUT": "12"}
    holder = world["start_worker"](**PARTS, **redeliver, RECON_JOB_PAUSE_IN_PART="120")
    world["start_worker"](**PARTS, **redeliver)
    jid = post_job(world)
    state = wait_for(
        lambda: (s := job_state(world, jid))["progress"].get("parts_done") == 2 and s,
        60,
        "two of the three parts to be done while the third is held",
    )
    assert state["status"] == "running"
    os.killpg(holder.pid, signal.SIGKILL)  # the whole worker: its part is never acknowledged
    holder.wait()
    done = wait_for(
        lambda: (s := job_state(world, jid))["status"] == "succeeded" and s,
        90,
        "the lost part to be redelivered and the job to succeed",
    )
    assert done["attempt"] == 1, "the job was not started again: only the part ran twice"
    single_bytes, single = _single_run(world, tmp_path)
    summary = dict(done["summary"])
    assert summary.pop("partitions") == 3
    assert {**summary, "duration_seconds": 0} == {**single, "duration_seconds": 0}
    data, exceptions = _results(world, jid)
    assert data == single_bytes
    assert exceptions == 4  # as the single-worker job publishes (tests/jobs/test_worker.py)
    data_dir = Path(world["app"].config["RECON_DATA_DIR"])
    assert not list(data_dir.rglob("parts")), "the split files are removed once published"


def test_cancel_in_the_map_ends_the_job_and_revokes_its_parts(world):
    world["start_worker"](**PARTS, RECON_JOB_PAUSE_IN_PART="120")
    jid = post_job(world)
    wait_for(
        lambda: job_state(world, jid)["progress"].get("pass") == "map",
        60,
        "the job to be split into parts",
    )
    response = world["client"].post(f"/api/projects/{world['pid']}/jobs/{jid}/cancel")
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["status"] == "cancelled"
    data_dir = Path(world["app"].config["RECON_DATA_DIR"])
    assert not list(data_dir.rglob("attempt-1")), "the attempt's files are removed"
    # A fresh worker (it never heard the revoke) runs the queued parts: they do nothing.
    world["start_worker"](**PARTS)
    wait_for(
        lambda: not _queue_has_parts(world),
        60,
        "the queued parts to be consumed",
    )
    state = job_state(world, jid)
    assert state["status"] == "cancelled" and state["summary"] is None
    with world["app"].app_context():
        assert db.session.query(ReconException).filter_by(job_id=jid).count() == 0


def _queue_has_parts(world) -> bool:
    import redis

    app = world["app"]
    client = redis.Redis.from_url(app.config["RECON_REDIS_URL"])
    try:
        return bool(client.llen(app.config["RECON_JOB_QUEUE"]))
    finally:
        client.close()
