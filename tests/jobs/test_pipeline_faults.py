"""A failure at any step of a job's pipeline ends the attempt (thread runner, SQLite and PG).

RECON_JOB_FAULT raises at the named step of every job; the job must end failed with a
sentence for a person (or, at the invalidation after the commit, stay succeeded), the
runner must log a JSON line with the job id, attempt, step and traceback, the error must
be counted, and the sources pair must take a new job.
"""

from __future__ import annotations

import pytest

from recon.extensions import db
from recon.jobs.models import Job
from recon.review.models import ReconException
from tests.jobs.pipeline import (
    assert_sentence,
    failure_lines,
    json_lines,
    metric,
)

FAILING_STEPS = ["claim", "engine", "publish", "audit", "commit"]
BEGINS = {
    "claim": "The job could not be started",
    "engine": "The matching engine stopped on an internal error",
    "publish": "The results could not be published as exceptions",
    "audit": "The job's audit record could not be written",
    "commit": "The job's results could not be saved",
}


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
