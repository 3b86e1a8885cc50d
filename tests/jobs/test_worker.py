"""Jobs on a real Celery worker, real Redis and real PostgreSQL, including a worker killed mid-job.

These tests commit for real (a worker in another process can't see a rolled-back
transaction), so each builds its own throwaway PostgreSQL database.
"""

from __future__ import annotations

import os
import signal
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from recon.db_types import utcnow
from recon.extensions import db
from recon.jobs.models import Job, JobStatus
from recon.jobs.service import create_job
from recon.projects.models import Project
from recon.review.models import ReconException
from tests.jobs.conftest import job_state, post_job
from tests.jobs.pipeline import wait_for
from tests.jobs.test_jobs_api import RULES

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


def test_a_worker_reaps_a_stale_job_at_start_up_and_runs_it_again(world):
    # A job a dead worker left running at attempt 1, its heartbeat long gone stale, and
    # no message left in the queue for it: only the reaper can bring it back.
    left, right = world["sources"]
    with world["app"].app_context():
        job = create_job(
            session=db.session,
            project=db.session.get(Project, world["pid"]),
            left_source_id=left,
            right_source_id=right,
            rules=RULES,
            enqueue=lambda _job_id: None,
        )
        old = utcnow() - timedelta(minutes=10)
        db.session.execute(
            update(Job)
            .where(Job.id == job.id)
            .values(status=JobStatus.running, attempt=1, started_at=old, heartbeat_at=old)
        )
        db.session.commit()
        jid = job.id
        db.session.remove()
    world["start_worker"](RECON_JOB_STALE_SECONDS="5")
    done = wait_for(
        lambda: (s := job_state(world, jid))["status"] == "succeeded" and s,
        60,
        "the reaped job to run again",
    )
    assert done["attempt"] == 2
    with world["app"].app_context():
        assert db.session.query(ReconException).filter_by(job_id=jid).count() == 4
