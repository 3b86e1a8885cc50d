"""Running a job: claim it, run the engine, publish the results in one transaction.

Crash safety: the claim bumps ``attempt``; results go under a per-attempt
directory; publishing updates the job row only if it is still this attempt's
and still running, in the same transaction as the exceptions. A worker killed
mid-job leaves the job running with its attempt; the redelivered task claims it
again with the next attempt and the stale attempt can never publish.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from sqlalchemy import select, update
from sqlalchemy.engine import CursorResult

from instrumentation import record_job, record_queue_wait, record_records_processed
from recon.audit.service import SYSTEM, record
from recon.db_types import SessionLike, utcnow
from recon.engine import EngineCancelled, EngineError, run_reconciliation
from recon.errors import APIError
from recon.jobs.models import Job, JobStatus
from recon.jobs.telemetry import engine_spans
from recon.sources.models import Source
from recon.storage import Storage

log = logging.getLogger("recon.jobs")

PROGRESS_EVERY = 0.5  # seconds between progress writes


@dataclass(frozen=True)
class EngineSettings:
    memory_limit: str
    max_candidates: int
    threads: int | None = None
    # Fault injection: hold a claimed job so a drill (or test) can kill its worker mid-job.
    pause_after_claim: float = 0.0


@dataclass(frozen=True)
class Outcome:
    status: JobStatus
    attempt: int
    published: bool


def claim(*, session: SessionLike, job_id: int) -> int | None:
    """Mark the job running under a new attempt and return it; None if it is not runnable."""
    job = session.get(Job, job_id)
    if job is None or job.status.finished:
        return None
    if job.cancel_requested:
        _finish(session, job_id, job.attempt, JobStatus.cancelled, error="cancelled")
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


def _finish(
    session: SessionLike,
    job_id: int,
    attempt: int,
    status: JobStatus,
    *,
    error: str | None = None,
    summary: dict[str, Any] | None = None,
    result_path: str | None = None,
) -> bool:
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


class _Reporter:
    """Writes progress and reads cancellation at most every PROGRESS_EVERY seconds."""

    def __init__(self, session: SessionLike, job_id: int, attempt: int) -> None:
        self.session, self.job_id, self.attempt = session, job_id, attempt
        self.last = 0.0
        self.cancelled = False

    def progress(self, fraction: float, name: str) -> None:
        now = time.monotonic()
        if now - self.last < PROGRESS_EVERY and fraction < 1.0:
            return
        self.last = now
        self.session.execute(
            update(Job)
            .where(Job.id == self.job_id, Job.attempt == self.attempt)
            .values(progress={"fraction": round(fraction, 4), "pass": name}, heartbeat_at=utcnow())
        )
        self.session.commit()

    def should_cancel(self) -> bool:
        if not self.cancelled:
            self.cancelled = bool(
                self.session.scalar(select(Job.cancel_requested).where(Job.id == self.job_id))
            )
            self.session.commit()
        return self.cancelled


def execute_job(
    *,
    session: SessionLike,
    storage: Storage,
    job_id: int,
    engine: EngineSettings,
    on_published: Any = None,
) -> Outcome | None:
    """Run the job once (one attempt) and return how it ended; None if it was not runnable.

    Engine and rule errors fail the job with their message; any other exception
    propagates (after the job is left running) so the queue can retry it.
    """
    attempt = claim(session=session, job_id=job_id)
    if attempt is None:
        return None
    job = session.get(Job, job_id)
    assert job is not None
    record_queue_wait(attempt=attempt, queued_at=job.created_at, claimed_at=job.started_at)
    started = time.perf_counter()
    left = session.get(Source, job.left_source_id)
    right = session.get(Source, job.right_source_id)
    assert left is not None and right is not None
    attempt_dir = storage.job_attempt_dir(job.project_id, job.id, attempt)
    out = storage.path(attempt_dir)
    out.mkdir(parents=True, exist_ok=True)
    if engine.pause_after_claim:
        time.sleep(engine.pause_after_claim)
    results = out / "results.parquet"
    reporter = _Reporter(session, job_id, attempt)
    try:
        # Telemetry hook: a span per engine step, fed by the progress callback.
        with engine_spans(rules=job.rules, progress=reporter.progress) as engine_run:
            summary = run_reconciliation(
                storage.path(left.path),
                storage.path(right.path),
                job.rules,
                results,
                memory_limit=engine.memory_limit,
                temp_dir=storage.tmp_dir,
                threads=engine.threads,
                max_candidates=engine.max_candidates,
                progress=engine_run.progress,
                should_cancel=reporter.should_cancel,
            )
            engine_run.finished(summary)
    except EngineCancelled:
        return _end(session, storage, job, attempt, JobStatus.cancelled, started, "cancelled")
    except (EngineError, APIError) as exc:
        return _end(session, storage, job, attempt, JobStatus.failed, started, exc.detail)
    return _publish(
        session,
        storage,
        job,
        attempt,
        summary,
        results,
        left,
        right,
        started,
        attempt_dir,
        on_published,
    )


def _end(
    session: SessionLike,
    storage: Storage,
    job: Job,
    attempt: int,
    status: JobStatus,
    started: float,
    error: str,
) -> Outcome:
    session.rollback()
    ended = _finish(session, job.id, attempt, status, error=error)
    if ended:
        record(
            session=session,
            actor=SYSTEM,
            action=f"job.{status.value}",
            object_type="job",
            object_id=job.id,
            project_id=job.project_id,
            after={"error": error, "attempt": attempt},
        )
    session.commit()
    storage.remove(storage.job_attempt_dir(job.project_id, job.id, attempt))
    if ended:
        record_job(status.value, time.perf_counter() - started)
    return Outcome(status=status, attempt=attempt, published=False)


def _publish(
    session: SessionLike,
    storage: Storage,
    job: Job,
    attempt: int,
    summary: dict[str, Any],
    results: Path,
    left: Source,
    right: Source,
    started: float,
    attempt_dir: str,
    on_published: Any,
) -> Outcome:
    from recon.review.publish import publish_exceptions

    relative = f"{attempt_dir}/results.parquet"
    if not _finish(
        session, job.id, attempt, JobStatus.succeeded, summary=summary, result_path=relative
    ):
        # A newer attempt owns the job now: this one must leave no trace.
        session.rollback()
        storage.remove(attempt_dir)
        log.warning("job %s attempt %s is stale; its results were discarded", job.id, attempt)
        return Outcome(status=JobStatus.running, attempt=attempt, published=False)
    counts: dict[str, Any] = {}
    if not job.dry_run:
        counts = publish_exceptions(
            session=session,
            job=job,
            results_path=results,
            left_path=storage.path(left.path),
            right_path=storage.path(right.path),
            scale_left=left.amount_scale,
            scale_right=right.amount_scale,
        )
    record(
        session=session,
        actor=SYSTEM,
        action="job.succeeded",
        object_type="job",
        object_id=job.id,
        project_id=job.project_id,
        after={
            "attempt": attempt,
            "match_rate": summary.get("match_rate"),
            "exceptions": counts,
            "dry_run": job.dry_run,
        },
    )
    session.commit()
    _remove_other_attempts(storage, job, attempt)
    record_job(JobStatus.succeeded.value, time.perf_counter() - started)
    record_records_processed("left", int(summary["left"]["rows"]))
    record_records_processed("right", int(summary["right"]["rows"]))
    if on_published is not None:
        on_published(job)
    return Outcome(status=JobStatus.succeeded, attempt=attempt, published=True)


def _remove_other_attempts(storage: Storage, job: Job, attempt: int) -> None:
    job_dir = storage.path(storage.job_dir(job.project_id, job.id))
    for child in job_dir.glob("attempt-*"):
        if child.name != f"attempt-{attempt}":
            storage.remove(str(child.relative_to(storage.root)))


def fail_job(*, session: SessionLike, job_id: int, error: str) -> bool:
    """Mark the job failed (retries exhausted, time limit); return whether it was still active."""
    session.rollback()
    job = session.get(Job, job_id)
    if job is None:
        return False
    ended = _finish(session, job_id, job.attempt, JobStatus.failed, error=error)
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
