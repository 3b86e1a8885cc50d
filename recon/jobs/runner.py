"""Running a job: claim it, run the engine, publish the results in one transaction.

Crash safety: the claim bumps ``attempt``; results go under a per-attempt
directory; publishing updates the job row only if it is still this attempt's
and still running, in the same transaction as the exceptions. A worker killed
mid-job leaves the job running with its attempt; the redelivered task (or the
reaper, recon.jobs.reaper, once the heartbeat is stale) claims it again with
the next attempt and the stale attempt can never publish.

No exception leaves an attempt running: every step (claim, engine, publish,
audit, commit, invalidation) is guarded. A failure is logged with the job id,
attempt, step and traceback, counted, and either ends the job ``failed`` with
a sentence for a person (internal detail stays in the log) or, when it is
transient (the database or Redis unreachable), raises ``TransientJobError`` so
the queue can retry it with a new attempt. A failed cache invalidation after
the commit leaves the job succeeded (its results are published; cached reads
age out within RECON_CACHE_TTL) and is logged and counted the same way.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from instrumentation import (
    record_job,
    record_queue_wait,
    record_records_processed,
)
from recon.audit.service import SYSTEM, record
from recon.db_types import SessionLike
from recon.engine import EngineCancelled, EngineError, run_reconciliation
from recon.errors import APIError
from recon.jobs.attempts import claim, fail_job, finish
from recon.jobs.failures import (
    TRANSIENT,
    Step,
    TransientJobError,
    failure_sentence,
    inject_fault,
    log_failure,
)
from recon.jobs.models import Job, JobStatus
from recon.jobs.telemetry import engine_spans
from recon.jobs.watch import JobWatch, ProgressReporter
from recon.sources.models import Source
from recon.storage import Storage

log = logging.getLogger("recon.jobs")


@dataclass(frozen=True)
class EngineSettings:
    memory_limit: str
    max_candidates: int
    threads: int | None = None
    # Fault injection: hold a claimed job so a drill (or test) can kill its worker mid-job.
    pause_after_claim: float = 0.0
    # Fault injection: "<step>" or "<step>:transient" raises at that step (RECON_JOB_FAULT).
    fault: str | None = None
    heartbeat_seconds: float = 20.0
    # A job with more records than this on a side runs in partitions (recon.jobs.partitioned).
    partition_rows: int = 5_000_000
    partitions: int = 0  # 0: one per partition_rows records of the bigger side
    # Fault injection: hold each partition of a job (a drill kills its worker mid-map).
    pause_in_part: float = 0.0


@dataclass(frozen=True)
class Outcome:
    status: JobStatus
    attempt: int
    published: bool


@dataclass
class Attempt:
    """One attempt of a job, as the pipeline's steps share it."""

    job_id: int
    engine: EngineSettings
    number: int | None = None
    step: Step = Step.claim
    started: float = field(default_factory=time.perf_counter)
    job: Job | None = None
    dir: str = ""


PublishExceptions = Callable[..., dict[str, Any]]


@dataclass(frozen=True)
class Hooks:
    """What other domains do in a job's pipeline, told to the runner (it imports none of them).

    ``publish`` writes the exceptions of a job (the review domain's publish, called with
    the keyword arguments of ``recon.review.publish.publish_exceptions``); ``published``
    runs after the commit (the cache invalidation).
    """

    publish: PublishExceptions
    published: Callable[[Job], None] | None = None
    # Celery only: split the job and send its parts as a chord; None when the job is
    # small enough for one run (recon.jobs.partitioned.start_parts, with the dispatch bound).
    partition: Callable[..., Outcome | None] | None = None


def execute_job(
    *,
    session: SessionLike,
    storage: Storage,
    job_id: int,
    engine: EngineSettings,
    hooks: Hooks,
) -> Outcome | None:
    """Run the job once (one attempt) and return how it ended; None if it was not runnable.

    Every failure ends the attempt: the job fails with a sentence, or, on a transient
    error, TransientJobError is raised with the job left running for a retry.
    """
    state = Attempt(job_id=job_id, engine=engine)
    try:
        return _pipeline(session, storage, state, hooks)
    except Exception as exc:
        return abort_attempt(session, storage, state, exc)


def _pipeline(
    session: SessionLike, storage: Storage, state: Attempt, hooks: Hooks
) -> Outcome | None:
    inject_fault(state.engine.fault, Step.claim)
    state.number = claim(session=session, job_id=state.job_id)
    if state.number is None:
        return None
    job = state.job = session.get(Job, state.job_id)
    assert job is not None
    record_queue_wait(attempt=state.number, queued_at=job.created_at, claimed_at=job.started_at)
    state.dir = storage.job_attempt_dir(job.project_id, job.id, state.number)
    storage.path(state.dir).mkdir(parents=True, exist_ok=True)
    session.commit()
    watch = JobWatch(
        session=session,
        job_id=state.job_id,
        attempt=state.number,
        heartbeat=state.engine.heartbeat_seconds,
    )
    with watch:
        if state.engine.pause_after_claim:
            # No transaction may stay open here (on SQLite every one holds the write lock).
            session.commit()
            time.sleep(state.engine.pause_after_claim)
        state.step = Step.engine
        if hooks.partition is not None:
            started = hooks.partition(session=session, storage=storage, state=state, watch=watch)
            if started is not None:  # the parts run as a chord; its reduce publishes
                return started
        summary = _run_engine(session, storage, state, watch)
        if summary is None:
            return end_attempt(session, storage, state, JobStatus.cancelled, "cancelled")
        if isinstance(summary, str):
            return end_attempt(session, storage, state, JobStatus.failed, summary)
        outcome = publish_attempt(session, storage, state, summary, hooks.publish)
    after_publish(state, outcome, hooks)
    return outcome


def after_publish(state: Attempt, outcome: Outcome, hooks: Hooks) -> None:
    """Run the ``published`` hook of a published job; its failure leaves the job succeeded."""
    if not outcome.published or hooks.published is None:
        return
    assert state.job is not None
    state.step = Step.invalidation
    try:
        inject_fault(state.engine.fault, Step.invalidation)
        hooks.published(state.job)
    except Exception as exc:  # the job is published; the cache ages out by its TTL
        transient = isinstance(exc, TRANSIENT)
        log_failure(state.job_id, state.number, state.step, exc, transient=transient)


def job_tmp(storage: Storage, state: Attempt) -> Path:
    """This attempt's own directory under tmp/ (spill files), named so the cleanup knows it."""
    return storage.tmp_dir / f"job-{state.job_id}-attempt-{state.number}"


def _run_engine(
    session: SessionLike, storage: Storage, state: Attempt, watch: JobWatch
) -> dict[str, Any] | str | None:
    """The engine's summary; None when cancelled; the error sentence when the rules fail."""
    job = state.job
    assert job is not None and state.number is not None
    left = session.get(Source, job.left_source_id)
    right = session.get(Source, job.right_source_id)
    assert left is not None and right is not None
    rules, left_path, right_path = job.rules, storage.path(left.path), storage.path(right.path)
    session.commit()
    reporter = ProgressReporter(session, job.id, state.number)
    try:
        inject_fault(state.engine.fault, Step.engine)
        # Telemetry hook: a span per engine step, fed by the progress callback.
        with engine_spans(rules=rules, progress=reporter.progress) as engine_run:
            summary = run_reconciliation(
                left_path,
                right_path,
                rules,
                storage.path(state.dir) / "results.parquet",
                memory_limit=state.engine.memory_limit,
                temp_dir=job_tmp(storage, state),
                threads=state.engine.threads,
                max_candidates=state.engine.max_candidates,
                progress=engine_run.progress,
                should_cancel=watch.should_cancel,
                on_connection=watch.attach,
            )
            engine_run.finished(summary)
    except EngineCancelled:
        return None
    except Exception as exc:
        if watch.cancelled.is_set():  # the interrupt surfaces as whatever DuckDB raised
            return None
        if isinstance(exc, EngineError | APIError):
            return str(exc.detail)
        raise
    finally:
        storage.remove(str(job_tmp(storage, state).relative_to(storage.root)))
    return summary


def end_attempt(
    session: SessionLike, storage: Storage, state: Attempt, status: JobStatus, error: str
) -> Outcome:
    job = state.job
    assert job is not None and state.number is not None
    session.rollback()
    ended = finish(session, job.id, state.number, status, error=error)
    if ended:
        record(
            session=session,
            actor=SYSTEM,
            action=f"job.{status.value}",
            object_type="job",
            object_id=job.id,
            project_id=job.project_id,
            after={"error": error, "attempt": state.number},
        )
    session.commit()
    storage.remove(state.dir)
    if ended:
        record_job(status.value, time.perf_counter() - state.started)
    return Outcome(status=status, attempt=state.number, published=False)


def publish_attempt(
    session: SessionLike,
    storage: Storage,
    state: Attempt,
    summary: dict[str, Any],
    publish: PublishExceptions,
) -> Outcome:
    job = state.job
    assert job is not None and state.number is not None
    attempt, fault = state.number, state.engine.fault
    state.step = Step.publish
    relative = f"{state.dir}/results.parquet"
    if not finish(
        session, job.id, attempt, JobStatus.succeeded, summary=summary, result_path=relative
    ):
        # A newer attempt owns the job now: this one must leave no trace.
        session.rollback()
        storage.remove(state.dir)
        log.warning("job %s attempt %s is stale; its results were discarded", job.id, attempt)
        return Outcome(status=JobStatus.running, attempt=attempt, published=False)
    counts: dict[str, Any] = {}
    inject_fault(fault, Step.publish)
    if not job.dry_run:
        left = session.get(Source, job.left_source_id)
        right = session.get(Source, job.right_source_id)
        assert left is not None and right is not None
        counts = publish(
            session=session,
            job=job,
            results_path=storage.path(relative),
            left_path=storage.path(left.path),
            right_path=storage.path(right.path),
            scale_left=left.amount_scale,
            scale_right=right.amount_scale,
        )
    state.step = Step.audit
    inject_fault(fault, Step.audit)
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
    state.step = Step.commit
    inject_fault(fault, Step.commit)
    session.commit()
    _remove_other_attempts(storage, job, attempt)
    record_job(JobStatus.succeeded.value, time.perf_counter() - state.started)
    record_records_processed("left", int(summary["left"]["rows"]))
    record_records_processed("right", int(summary["right"]["rows"]))
    return Outcome(status=JobStatus.succeeded, attempt=attempt, published=True)


def abort_attempt(
    session: SessionLike, storage: Storage, state: Attempt, exc: Exception
) -> Outcome:
    """End the attempt after an unexpected exception: failed, or TransientJobError."""
    transient = isinstance(exc, TRANSIENT)
    log_failure(state.job_id, state.number, state.step, exc, transient=transient)
    try:
        session.rollback()
        if state.dir:
            storage.remove(state.dir)
    except Exception:  # the session's connection is gone too; the retry starts afresh
        log.warning("job %s: rollback after the failure failed", state.job_id, exc_info=True)
    if transient:
        raise TransientJobError(state.job_id, state.number, state.step) from exc
    error = failure_sentence(state.step, state.job_id, state.number, transient=False)
    try:
        fail_job(session=session, job_id=state.job_id, error=error)
    except Exception as again:
        # Nowhere to write the failure: the job stays running until its heartbeat goes
        # stale and the reaper ends it.
        log_failure(state.job_id, state.number, state.step, again, transient=True)
        raise TransientJobError(state.job_id, state.number, state.step) from again
    return Outcome(status=JobStatus.failed, attempt=state.number or 0, published=False)


def _remove_other_attempts(storage: Storage, job: Job, attempt: int) -> None:
    job_dir = storage.path(storage.job_dir(job.project_id, job.id))
    for child in job_dir.glob("attempt-*"):
        if child.name != f"attempt-{attempt}":
            storage.remove(str(child.relative_to(storage.root)))
