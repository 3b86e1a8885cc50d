"""The reaper: no job stays ``running`` after the process running it died.

A running attempt writes ``heartbeat_at`` every RECON_JOB_STALE_SECONDS / 4
(recon.jobs.watch). A job whose heartbeat is older than RECON_JOB_STALE_SECONDS
has lost its process: with Celery it is re-queued (its next claim is a new
attempt; the dead one can never publish) until it has had ``max_attempts``,
then failed; with the in-process runner, whose jobs die with their process, it
is failed with a sentence saying so. Every change is a conditional update on
the attempt and the stale heartbeat, so the reapers of several processes (every
web and worker process runs one) never act twice on one job, and a job that
finishes meanwhile is left alone.

At start-up the reaper also clears ``RECON_DATA_DIR/tmp``: entries older than
the process that are not a running job's own directory (``job-<id>-attempt-<n>``)
are what crashed uploads and jobs left.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, cast

from flask import Flask
from sqlalchemy import func, select, update
from sqlalchemy.engine import CursorResult

from instrumentation import record_job, route_context
from recon.audit.service import SYSTEM, record
from recon.db_types import SessionLike, utcnow
from recon.extensions import db
from recon.jobs.failures import MAX_RETRIES
from recon.jobs.models import Job, JobStatus
from recon.jobs.watch import live_attempts
from recon.storage import Storage

log = logging.getLogger("recon.jobs")

JOB_TMP = re.compile(r"^job-(\d+)-attempt-(\d+)(?:-part-\d+)?$")


def stale_sentence(stale_seconds: int, *, attempts: int | None = None) -> str:
    """The ``error`` of a job whose process stopped answering."""
    if attempts is not None:
        return (
            f"The job's worker stopped answering on each of its {attempts} attempts (no "
            f"heartbeat for {stale_seconds} s); it was given up. Run it again."
        )
    return (
        f"The server running the job stopped (no heartbeat for {stale_seconds} s); "
        "nothing was published. Run the job again."
    )


@dataclass
class Reaped:
    requeued: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)


def reap_stale_jobs(
    *,
    session: SessionLike,
    storage: Storage,
    stale_seconds: int,
    requeue: Callable[[int], None] | None = None,
    max_attempts: int = 4,
) -> Reaped:
    """Re-queue (``requeue`` given) or fail the running jobs with a stale heartbeat."""
    cutoff = utcnow() - timedelta(seconds=stale_seconds)
    beat = func.coalesce(Job.heartbeat_at, Job.started_at, Job.created_at)
    live = live_attempts()
    stale = [
        (job_id, attempt, project_id)
        for job_id, attempt, project_id in session.execute(
            select(Job.id, Job.attempt, Job.project_id).where(
                Job.status == JobStatus.running, beat < cutoff
            )
        )
        if (job_id, attempt) not in live
    ]
    session.commit()
    reaped = Reaped()
    for job_id, attempt, project_id in stale:
        still_stale = (
            Job.id == job_id,
            Job.attempt == attempt,
            Job.status == JobStatus.running,
            beat < cutoff,
        )
        if requeue is not None and attempt < max_attempts:
            changed = session.execute(
                update(Job).where(*still_stale).values(status=JobStatus.queued)
            )
            session.commit()
            if cast(CursorResult[Any], changed).rowcount == 1:
                _requeue(session, requeue, job_id, attempt)
                reaped.requeued.append(job_id)
            continue
        error = stale_sentence(stale_seconds, attempts=attempt if requeue else None)
        changed = session.execute(
            update(Job)
            .where(*still_stale)
            .values(status=JobStatus.failed, error=error, finished_at=utcnow())
        )
        if cast(CursorResult[Any], changed).rowcount == 1:
            record(
                session=session,
                actor=SYSTEM,
                action="job.failed",
                object_type="job",
                object_id=job_id,
                project_id=project_id,
                after={"error": error, "attempt": attempt, "reaped": True},
            )
            session.commit()
            storage.remove(storage.job_attempt_dir(project_id, job_id, attempt))
            record_job(JobStatus.failed.value, None)
            reaped.failed.append(job_id)
            log.warning(
                "job %s attempt %s had no heartbeat for %s s: failed",
                job_id,
                attempt,
                stale_seconds,
                extra={"job_id": job_id, "attempt": attempt},
            )
        else:
            session.commit()
    return reaped


def _requeue(
    session: SessionLike, requeue: Callable[[int], None], job_id: int, attempt: int
) -> None:
    try:
        requeue(job_id)
    except Exception as exc:  # the queue is down: a queued job nobody will run must end
        session.rollback()
        session.execute(
            update(Job)
            .where(Job.id == job_id, Job.attempt == attempt, Job.status == JobStatus.queued)
            .values(
                status=JobStatus.failed,
                finished_at=utcnow(),
                error="The job's worker stopped and the job could not be queued again. "
                "Run it again.",
            )
        )
        session.commit()
        record_job(JobStatus.failed.value, None)
        log.warning(
            "job %s could not be re-queued: %s",
            job_id,
            type(exc).__name__,
            extra={"job_id": job_id, "attempt": attempt},
        )
        return
    log.warning(
        "job %s attempt %s had no heartbeat: re-queued",
        job_id,
        attempt,
        extra={"job_id": job_id, "attempt": attempt},
    )


def clear_tmp(*, session: SessionLike, storage: Storage, started_at: float) -> list[str]:
    """Remove what dead uploads and jobs left in tmp/; return the names removed."""
    running = {
        (job_id, attempt)
        for job_id, attempt in session.execute(
            select(Job.id, Job.attempt).where(Job.status == JobStatus.running)
        )
    }
    session.commit()
    removed = []
    for entry in storage.tmp_dir.iterdir():
        owner = JOB_TMP.match(entry.name)
        if owner and (int(owner.group(1)), int(owner.group(2))) in running:
            continue
        try:
            if entry.stat().st_mtime >= started_at:
                continue  # in flight in a process younger than this one
        except FileNotFoundError:
            continue
        storage.remove(str(entry.relative_to(storage.root)))
        removed.append(entry.name)
    if removed:
        log.info("removed %s entries left in tmp/ by stopped processes", len(removed))
    return removed


class Reaper:
    """The reaper of one process: once at start, then every RECON_JOB_STALE_SECONDS / 2."""

    def __init__(self, app: Flask, *, requeue: Callable[[int], None] | None) -> None:
        self.app = app
        self.requeue = requeue
        self.started_at = time.time()
        self.stale = int(app.config["RECON_JOB_STALE_SECONDS"])
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        """Start the reaper's thread (once per process; later calls do nothing)."""
        if self._thread is not None:  # every request asks: no lock once it runs
            return
        with self._lock:
            if self._thread is not None:
                return
            self._thread = threading.Thread(target=self._loop, name="recon-reaper", daemon=True)
            self._thread.start()

    def run_once(self, *, clear: bool = False) -> Reaped:
        """Reap the stale jobs now (and clear tmp/ when ``clear``)."""
        with self.app.app_context(), route_context("task:recon.reaper"):
            storage = self.app.extensions["recon_storage"]
            reaped = reap_stale_jobs(
                session=db.session,
                storage=storage,
                stale_seconds=self.stale,
                requeue=self.requeue,
                max_attempts=MAX_RETRIES + 1,
            )
            if clear:
                clear_tmp(session=db.session, storage=storage, started_at=self.started_at)
            return reaped

    def _loop(self) -> None:
        first = True
        while True:
            try:
                self.run_once(clear=first)
                first = False
            except Exception as exc:  # the DB may be down: the next round tries again
                log.warning("the job reaper failed: %s", type(exc).__name__, exc_info=exc)
            time.sleep(self.stale / 2)
