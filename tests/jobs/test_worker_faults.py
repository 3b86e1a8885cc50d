"""A failure at any step of a job's pipeline on a real Celery worker ends the attempt.

The worker runs with RECON_JOB_FAULT set; its stdout (the JSON log lines) is its log file.
"""

from __future__ import annotations

import pytest

from recon.extensions import db
from recon.review.models import ReconException
from tests.jobs.conftest import job_state, post_job
from tests.jobs.pipeline import FINISHED, assert_sentence, failure_lines, json_lines, wait_for
from tests.jobs.test_pipeline_faults import BEGINS, FAILING_STEPS

pytestmark = [pytest.mark.slow, pytest.mark.redis, pytest.mark.postgres]


def finished(world, jid: int, timeout: float = 90) -> dict:
    return wait_for(
        lambda: (s := job_state(world, jid))["status"] in FINISHED and s, timeout, f"job {jid}"
    )


def worker_lines(world) -> list[dict]:
    return json_lines((world["tmp"] / "worker-0.log").read_text())


def exceptions_of(world, jid: int) -> int:
    with world["app"].app_context():
        return db.session.query(ReconException).filter_by(job_id=jid).count()


@pytest.mark.parametrize("step", FAILING_STEPS)
def test_a_failure_at_each_step_on_a_worker_fails_the_job_and_logs_it(world, step: str):
    world["start_worker"](RECON_JOB_FAULT=step)
    jid = post_job(world)
    done = finished(world, jid)
    assert done["status"] == "failed" and done["error"].startswith(BEGINS[step])
    assert_sentence(done["error"], jid)
    assert exceptions_of(world, jid) == 0
    lines = wait_for(lambda: failure_lines(worker_lines(world), jid, step), 10, "the log line")
    assert len(lines) == 1 and lines[0]["level"] == "ERROR"
    assert "Traceback" in lines[0]["exception"] and "InjectedFault" in lines[0]["exception"]


def test_a_failed_invalidation_on_a_worker_leaves_the_job_succeeded_and_logged(world):
    world["start_worker"](RECON_JOB_FAULT="invalidation")
    jid = post_job(world)
    done = finished(world, jid)
    assert done["status"] == "succeeded" and exceptions_of(world, jid) == 4
    lines = wait_for(
        lambda: failure_lines(worker_lines(world), jid, "invalidation"), 10, "the log line"
    )
    assert len(lines) == 1 and "InjectedFault" in lines[0]["exception"]


def test_a_transient_failure_on_a_worker_is_retried_up_to_the_limit_then_fails(world):
    world["start_worker"](RECON_JOB_FAULT="publish:transient")
    jid = post_job(world)
    done = finished(world, jid, timeout=120)
    # Three retries after the first attempt (backoff 1, 2, 4 s), each a new attempt.
    assert done["status"] == "failed" and done["attempt"] == 4
    assert "the database was not reachable" in done["error"]
    assert_sentence(done["error"], jid)
    assert exceptions_of(world, jid) == 0
    lines = failure_lines(worker_lines(world), jid, "publish")
    assert [line["attempt"] for line in lines] == [1, 2, 3, 4]
    assert all(line["transient"] is True for line in lines)
