"""A job row's transitions, each conditional on its attempt: claim, finish, fail.

The claim bumps ``attempt``; every later write names the attempt and succeeds only
while the job is still this attempt's and active, so an attempt that lost its worker
(and was claimed again) can never finish the job.
"""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import update
from sqlalchemy.engine import CursorResult

from instrumentation import record_job
from recon.audit.service import SYSTEM, record
from recon.db_types import SessionLike, utcnow
from recon.jobs.models import Job, JobStatus


def claim(*, session: SessionLike, job_id: int) -> int | None:
    """Mark the job running under a new attempt and return it; None if it is not runnable."""
    job = session.get(Job, job_id)
    if job is None or job.status.finished:
        return None
    if job.cancel_requested:
        finish(session, job_id, job.attempt, JobStatus.cancelled, error="cancelled")
        session.commit()
        return None
    previous = job.attempt
    now = utcnow()
    result = session.execute(
        update(Job)
        .where(
            Job.id == job_id,
            Job.status.in_((JobStatus.queued, JobStatus.running)),
            Job.attempt == previous,
        )
        .values(
            status=JobStatus.running,
            attempt=Job.attempt + 1,
            started_at=now,
            heartbeat_at=now,
            error=None,
            progress={"fraction": 0.0, "pass": None},
        )
    )
    session.commit()
    if (
        cast(CursorResult[Any], result).rowcount != 1
    ):  # another worker claimed it between our read and update
        return None
    return previous + 1


def finish(
    session: SessionLike,
    job_id: int,
    attempt: int,
    status: JobStatus,
    *,
    error: str | None = None,
    summary: dict[str, Any] | None = None,
    result_path: str | None = None,
) -> bool:
    """End the job with ``status`` if it is still at ``attempt`` and active; return whether
    it was (a stale attempt changes nothing)."""
    values: dict[str, Any] = {"status": status, "finished_at": utcnow(), "error": error}
    if summary is not None:
        values.update(
            summary=summary, result_path=result_path, progress={"fraction": 1.0, "pass": None}
        )
    result = session.execute(
        update(Job)
        .where(
            Job.id == job_id,
            Job.attempt == attempt,
            Job.status.in_((JobStatus.queued, JobStatus.running)),
        )
        .values(**values)
    )
    return cast(CursorResult[Any], result).rowcount == 1


def fail_job(*, session: SessionLike, job_id: int, error: str) -> bool:
    """Mark the job failed (retries exhausted, time limit); return whether it was still active."""
    session.rollback()
    job = session.get(Job, job_id)
    if job is None:
        return False
    ended = finish(session, job_id, job.attempt, JobStatus.failed, error=error)
    if ended:
        record(
            session=session,
            actor=SYSTEM,
            action="job.failed",
            object_type="job",
            object_id=job_id,
            project_id=job.project_id,
            after={"error": error},
        )
    session.commit()
    if ended:
        record_job(JobStatus.failed.value, None)
    return ended
