"""The reaper: a running job whose heartbeat is stale is failed (thread runner) or re-queued
(Celery, up to the retry limit); tmp/ is cleared of what dead processes left."""

from __future__ import annotations

import os
import time
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from recon.db_types import utcnow
from recon.extensions import db
from recon.jobs.models import Job, JobStatus
from recon.jobs.reaper import Reaper, clear_tmp
from recon.jobs.service import create_job
from recon.jobs.watch import LIVE
from recon.projects.models import Project
from tests.jobs.conftest import World
from tests.jobs.pipeline import wait_for
from tests.jobs.test_jobs_api import RULES

STALE = 60


def running_job(world: World, *, age: float, attempt: int = 1) -> int:
    """A job left running at ``attempt`` with a heartbeat ``age`` seconds old, and its files."""
    with world.app.app_context():
        project = db.session.get(Project, world.pid)
        # Never handed to a runner: made to look like a run interrupted mid-way.
        jid = create_job(
            session=db.session,
            project=project,
            left_source_id=world.left,
            right_source_id=world.right,
            rules=RULES,
            enqueue=lambda _job_id: None,
        ).id
        beat = utcnow() - timedelta(seconds=age)
        db.session.execute(
            update(Job)
            .where(Job.id == jid)
            .values(
                status=JobStatus.running,
                attempt=attempt,
                heartbeat_at=beat,
                finished_at=None,
                error=None,
            )
        )
        db.session.commit()
        storage = world.app.extensions["recon_storage"]
        storage.path(storage.job_attempt_dir(world.pid, jid, attempt)).mkdir(
            parents=True, exist_ok=True
        )
        db.session.remove()
    return jid


def reaper_of(world: World, requeue=None) -> Reaper:
    world.app.config["RECON_JOB_STALE_SECONDS"] = STALE
    return Reaper(world.app, requeue=requeue)


def test_a_stale_job_on_the_thread_runner_is_failed_and_frees_its_pair(world_at) -> None:
    world = world_at()
    jid = running_job(world, age=STALE + 5)
    reaped = reaper_of(world).run_once()
    assert reaped.failed == [jid] and reaped.requeued == []
    state = world.job(jid)
    assert state["status"] == "failed"
    assert state["error"] == (
        "The server running the job stopped (no heartbeat for 60 s); nothing was "
        "published. Run the job again."
    )
    assert world.attempt_dirs() == []
    audit = world.client.get(f"/api/projects/{world.pid}/audit").get_json()["items"]
    assert any(e["action"] == "job.failed" and e["object_id"] == str(jid) for e in audit)
    assert world.finished(world.post_job())["status"] == "succeeded"
    assert reaper_of(world).run_once().failed == []  # nothing left to reap


def test_a_fresh_or_live_job_is_left_running(world_at) -> None:
    world = world_at()
    jid = running_job(world, age=STALE - 20)
    assert reaper_of(world).run_once().failed == []
    assert world.job(jid)["status"] == "running"
    # Stale, but this process is still running it (its heartbeat waits behind a lock).
    with world.app.app_context():
        db.session.execute(
            update(Job).where(Job.id == jid).values(heartbeat_at=utcnow() - timedelta(hours=1))
        )
        db.session.commit()
        db.session.remove()
    LIVE.add((jid, 1))
    try:
        assert reaper_of(world).run_once().failed == []
    finally:
        LIVE.discard((jid, 1))
    assert world.job(jid)["status"] == "running"
    assert reaper_of(world).run_once().failed == [jid]


def test_a_stale_job_with_celery_is_requeued_until_its_attempts_run_out(world_at) -> None:
    world = world_at()
    sent: list[int] = []
    jid = running_job(world, age=STALE + 5, attempt=2)
    assert reaper_of(world, requeue=sent.append).run_once().requeued == [jid]
    assert sent == [jid]
    state = world.job(jid)
    assert state["status"] == "queued" and state["attempt"] == 2  # the next claim is attempt 3
    # The fourth attempt was the last one: a stale job then fails.
    with world.app.app_context():
        db.session.execute(
            update(Job).where(Job.id == jid).values(status=JobStatus.running, attempt=4)
        )
        db.session.commit()
        db.session.remove()
    reaped = reaper_of(world, requeue=sent.append).run_once()
    assert reaped.failed == [jid] and sent == [jid]
    assert world.job(jid)["error"].startswith(
        "The job's worker stopped answering on each of its 4 attempts"
    )


def test_a_requeue_the_queue_refuses_fails_the_job(world_at) -> None:
    world = world_at()
    jid = running_job(world, age=STALE + 5)

    def refuse(_job_id: int) -> None:
        raise ConnectionError("redis is down")

    assert reaper_of(world, requeue=refuse).run_once().requeued == [jid]
    state = world.job(jid)
    assert state["status"] == "failed" and "could not be queued again" in state["error"]


def test_start_up_clears_what_dead_processes_left_in_tmp(world_at) -> None:
    world = world_at()
    live = running_job(world, age=0)
    storage = world.app.extensions["recon_storage"]
    tmp = storage.tmp_dir
    names = {
        "upload": tmp / "0123abcd.csv",
        "dead_job": tmp / "job-999-attempt-1",
        "live_job": tmp / f"job-{live}-attempt-1",
        "new_upload": tmp / "fedc.csv",
    }
    names["upload"].write_text("x")
    names["new_upload"].write_text("y")
    for name in ("dead_job", "live_job"):
        names[name].mkdir()
        (names[name] / "spill.tmp").write_text("z")
    started = time.time()
    old = started - 3600
    for name in ("upload", "dead_job", "live_job"):
        os.utime(names[name], (old, old))
    os.utime(names["new_upload"], (started + 5, started + 5))  # written after the start
    with world.app.app_context():
        removed = clear_tmp(session=db.session, storage=storage, started_at=started)
        db.session.remove()
    assert sorted(removed) == sorted([names["upload"].name, names["dead_job"].name])
    assert sorted(p.name for p in tmp.iterdir()) == sorted(
        [names["live_job"].name, names["new_upload"].name]
    )


@pytest.mark.parametrize("testing", [True, False])
def test_the_web_process_starts_its_reaper_on_its_first_request(world_at, testing) -> None:
    world = world_at()
    reaper = world.app.extensions["recon_reaper"]
    world.app.testing = testing
    try:
        assert world.client.get("/api/health").status_code == 200
    finally:
        world.app.testing = True
    assert (reaper._thread is not None) is (not testing)
    if not testing:
        assert reaper._thread.name == "recon-reaper" and reaper._thread.is_alive()


def test_an_unset_heartbeat_counts_from_the_claim(world_at, tmp_path: Path) -> None:
    world = world_at()
    jid = running_job(world, age=0)
    with world.app.app_context():
        db.session.execute(
            update(Job)
            .where(Job.id == jid)
            .values(heartbeat_at=None, started_at=utcnow() - timedelta(seconds=STALE + 1))
        )
        db.session.commit()
        db.session.remove()
    assert reaper_of(world).run_once().failed == [jid]


def test_a_running_job_beats_while_it_makes_no_progress(world_at) -> None:
    # Paused after its claim the job reports no progress: only the watch thread beats.
    world = world_at(RECON_JOB_PAUSE_AFTER_CLAIM=4, RECON_JOB_STALE_SECONDS=4)
    jid = world.post_job()

    def beat() -> object:
        with world.app.app_context():
            job = db.session.get(Job, jid)
            seen = (job.status, job.heartbeat_at, job.progress)
            db.session.remove()
        return seen

    status, first, progress = wait_for(
        lambda: (s := beat())[0] == JobStatus.running and s, 30, "the job to start"
    )
    time.sleep(2.5)
    status, later, progress_later = beat()
    assert status == JobStatus.running and progress_later == progress
    assert later > first, "no heartbeat while the job ran"
    assert world.finished(jid)["status"] == "succeeded"
