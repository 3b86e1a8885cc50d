"""Jobs on a real Celery worker, real Redis and real PostgreSQL, including a worker killed mid-job.

These tests commit for real (a worker in another process can't see a rolled-back
transaction), so each builds its own throwaway PostgreSQL database.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from recon.extensions import db
from recon.jobs.models import Job
from recon.review.models import ReconException
from tests.jobs.conftest import job_state, post_job
from tests.jobs.pipeline import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.redis, pytest.mark.postgres]


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
