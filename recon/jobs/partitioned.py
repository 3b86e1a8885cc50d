"""A big job on Celery: split, a chord of parts on any workers, then the reduce and publish.

The engine's plan (recon.engine.partition) run as tasks sharing RECON_DATA_DIR:

- the job's own task claims it (the attempt, as for any job), splits both
  sources into ``parts/`` under the attempt's directory and sends a chord:
  one ``recon.run_part`` per part, then ``recon.reduce_job`` with their results;
- each part task runs the leading key passes of its part and writes its
  records beside the split files. It beats the job's heartbeat and stops on a
  cancel like any attempt; a worker lost mid-part leaves its message
  unacknowledged, so Redis redelivers that part alone (acks_late), and a
  transient error retries it;
- the reduce runs the remaining passes and the breaks, writes the one results
  file and publishes it under the same crash-safety rules as a single run
  (the attempt must still be the job's, or nothing is published).

A part or reduce of a stale attempt (the reaper re-queued the job, which split
it again) finds the job no longer at its attempt and does nothing. Progress:
``split`` at 0, ``map`` from 0.1 to 0.8 by parts done, then ``reduce: <pass>``.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import update

from recon.db_types import SessionLike, utcnow
from recon.engine import EngineCancelled, EngineError
from recon.engine.partition import (
    PartResult,
    plan_partitions,
    reduce_partitions,
    run_partition,
    split_sources,
)
from recon.engine.run import Settings
from recon.jobs.attempts import fail_job, finish
from recon.jobs.failures import TRANSIENT, Step, TransientJobError, failure_sentence, log_failure
from recon.jobs.models import Job, JobStatus
from recon.jobs.runner import (
    Attempt,
    EngineSettings,
    Hooks,
    Outcome,
    abort_attempt,
    after_publish,
    end_attempt,
    publish_attempt,
)
from recon.jobs.watch import JobWatch, ProgressReporter
from recon.sources.models import Source
from recon.storage import Storage

log = logging.getLogger("recon.jobs")

PARTS = "parts"
MAX_AUTO_PARTITIONS = 64
Dispatch = Callable[[int, int, int], None]
INCOMPLETE = (
    "The job's parts did not all report back (one ran longer than "
    "RECON_JOB_VISIBILITY_TIMEOUT and was delivered twice); nothing was published. Run the "
    "job again."
)


def partition_count(engine: EngineSettings, rows: int) -> int:
    """How many parts a job with ``rows`` records on its bigger side runs in (0: one run)."""
    if rows <= engine.partition_rows:
        return 0
    if engine.partitions:
        return engine.partitions
    return min(MAX_AUTO_PARTITIONS, max(2, math.ceil(rows / engine.partition_rows)))


def part_task_id(namespace: str, job_id: int, attempt: int, index: int) -> str:
    """The Celery task id of one part, known in advance so a cancel can revoke it.

    ``namespace`` (RECON_CACHE_NAMESPACE) keeps the ids of deployments that share a
    Redis apart: a revoke is broadcast to every worker on it.
    """
    return f"{namespace or 'recon'}-job-{job_id}-attempt-{attempt}-part-{index}"


def reduce_task_id(namespace: str, job_id: int, attempt: int) -> str:
    return f"{namespace or 'recon'}-job-{job_id}-attempt-{attempt}-reduce"


def _sources(session: SessionLike, job: Job) -> tuple[Source, Source]:
    left = session.get(Source, job.left_source_id)
    right = session.get(Source, job.right_source_id)
    assert left is not None and right is not None
    return left, right


def _map_progress(session: SessionLike, job: Job, attempt: int, parts: int, done: int) -> None:
    fraction = 0.1 + 0.7 * done / parts
    session.execute(
        update(Job)
        .where(Job.id == job.id, Job.attempt == attempt, Job.status == JobStatus.running)
        .values(
            progress={
                "fraction": round(fraction, 4),
                "pass": "map",
                "partitions": parts,
                "parts_done": done,
            },
            heartbeat_at=utcnow(),
        )
    )
    session.commit()


def start_parts(
    *,
    session: SessionLike,
    storage: Storage,
    state: Attempt,
    watch: JobWatch,
    dispatch: Dispatch,
) -> Outcome | None:
    """Split a big job and send its chord; None when the job runs in one piece."""
    job = state.job
    assert job is not None and state.number is not None
    left, right = _sources(session, job)
    parts = partition_count(state.engine, max(left.row_count, right.row_count))
    if parts < 2:
        return None
    left_path, right_path = storage.path(left.path), storage.path(right.path)
    rules, attempt = job.rules, state.number
    session.commit()
    try:
        plan = plan_partitions(left_path, right_path, rules, parts)
        if not plan.splits:  # no leading key pass: nothing to split by
            return None
        ProgressReporter(session, job.id, attempt).progress(0.0, "split")
        target = storage.path(state.dir) / PARTS
        target.mkdir(parents=True, exist_ok=True)
        split_sources(
            left_path,
            right_path,
            plan,
            target,
            memory_limit=state.engine.memory_limit,
            threads=state.engine.threads,
        )
    except EngineError as exc:
        return end_attempt(session, storage, state, JobStatus.failed, str(exc.detail))
    if watch.should_cancel():
        return end_attempt(session, storage, state, JobStatus.cancelled, "cancelled")
    _map_progress(session, job, attempt, parts, 0)
    dispatch(job.id, attempt, parts)
    log.info(
        "job %s attempt %s: %s partitions sent",
        job.id,
        attempt,
        parts,
        extra={"job_id": job.id, "attempt": attempt},
    )
    return Outcome(status=JobStatus.running, attempt=attempt, published=False)


def _current(session: SessionLike, job_id: int, attempt: int) -> Job | None:
    """The job, if it is still running at this attempt."""
    job = session.get(Job, job_id)
    if job is None or job.attempt != attempt or job.status != JobStatus.running:
        session.rollback()
        return None
    return job


def _cancel(session: SessionLike, storage: Storage, job: Job, attempt: int) -> None:
    """End a job cancelled by its user (unless something ended it first) and drop its files."""
    session.rollback()
    if finish(session, job.id, attempt, JobStatus.cancelled, error="cancelled"):
        session.commit()
    storage.remove(storage.job_attempt_dir(job.project_id, job.id, attempt))


def run_part(
    *,
    session: SessionLike,
    storage: Storage,
    job_id: int,
    attempt: int,
    index: int,
    engine: EngineSettings,
) -> dict[str, Any]:
    """The map of one part: its records file and pass counts, or why it did nothing."""
    job = _current(session, job_id, attempt)
    if job is None:
        return {"index": index, "skipped": "stale"}
    folder = storage.path(storage.job_attempt_dir(job.project_id, job.id, attempt)) / PARTS
    rules, parts = job.rules, int(job.progress.get("partitions") or 0)
    session.commit()
    tmp = storage.tmp_dir / f"job-{job_id}-attempt-{attempt}-part-{index}"
    watch = JobWatch(
        session=session, job_id=job_id, attempt=attempt, heartbeat=engine.heartbeat_seconds
    )
    with watch:
        if engine.pause_in_part:
            time.sleep(engine.pause_in_part)
        if watch.should_cancel():
            _cancel(session, storage, job, attempt)
            return {"index": index, "skipped": "cancelled"}
        left, right = (
            folder / "left" / f"part-{index}.parquet",
            folder / "right" / f"part-{index}.parquet",
        )
        out = folder / f"records-{index}.parquet"
        try:
            plan = plan_partitions(left, right, rules, parts)
            result = run_partition(
                left,
                right,
                rules,
                plan,
                out,
                settings=Settings(
                    memory_limit=engine.memory_limit,
                    temp_dir=tmp,
                    threads=engine.threads,
                    max_candidates=engine.max_candidates,
                    should_cancel=watch.should_cancel,
                    on_connection=watch.attach,
                ),
            )
        except Exception as exc:
            return _part_failed(session, storage, job, attempt, index, watch, exc)
        finally:
            storage.remove(str(tmp.relative_to(storage.root)))
    done = len(list(folder.glob("records-*.parquet")))
    _map_progress(session, job, attempt, parts, done)
    return {
        "index": index,
        "records": str(result.records.relative_to(storage.root)),
        "passes": result.passes,
        "breaks": result.breaks,
    }


def _part_failed(
    session: SessionLike,
    storage: Storage,
    job: Job,
    attempt: int,
    index: int,
    watch: JobWatch,
    exc: Exception,
) -> dict[str, Any]:
    """End the job for a part that could not run (or re-raise a transient error for a retry)."""
    if isinstance(exc, EngineCancelled) or watch.cancelled.is_set():
        _cancel(session, storage, job, attempt)
        return {"index": index, "skipped": "cancelled"}
    if isinstance(exc, TRANSIENT):
        log_failure(job.id, attempt, Step.engine, exc, transient=True)
        raise TransientJobError(job.id, attempt, Step.engine) from exc
    if isinstance(exc, EngineError):
        error = str(exc.detail)
    else:
        log_failure(job.id, attempt, Step.engine, exc, transient=False)
        error = failure_sentence(Step.engine, job.id, attempt, transient=False)
    session.rollback()
    if _current(session, job.id, attempt) is not None:
        fail_job(session=session, job_id=job.id, error=error)
        storage.remove(storage.job_attempt_dir(job.project_id, job.id, attempt))
    return {"index": index, "skipped": "failed"}


def reduce_parts(
    *,
    session: SessionLike,
    storage: Storage,
    job_id: int,
    attempt: int,
    parts: list[dict[str, Any]],
    engine: EngineSettings,
    hooks: Hooks,
) -> Outcome | None:
    """The chord's callback: reduce the parts and publish; None when the attempt is over."""
    state = Attempt(job_id=job_id, engine=engine, number=attempt, step=Step.engine)
    try:
        return _reduce(session, storage, state, parts, hooks)
    except Exception as exc:
        return abort_attempt(session, storage, state, exc)


def _reduce(
    session: SessionLike,
    storage: Storage,
    state: Attempt,
    parts: list[dict[str, Any]],
    hooks: Hooks,
) -> Outcome | None:
    assert state.number is not None
    attempt = state.number
    job = _current(session, state.job_id, attempt)
    if job is None:
        return None
    state.job = job
    state.dir = storage.job_attempt_dir(job.project_id, job.id, attempt)
    if job.started_at is not None:  # the job's time covers the split and the map too
        elapsed = (utcnow() - job.started_at).total_seconds()
        state.started = time.perf_counter() - elapsed
    if any("skipped" in p for p in parts):  # a part saw a cancel or a failure first
        if job.cancel_requested:
            return end_attempt(session, storage, state, JobStatus.cancelled, "cancelled")
        session.rollback()
        return None
    expected = int(job.progress.get("partitions") or 0) if job.progress else 0
    if sorted(int(p["index"]) for p in parts) != list(range(expected or len(parts))):
        # A part ran twice (it outlived the visibility timeout) and the chord fired early.
        return end_attempt(session, storage, state, JobStatus.failed, INCOMPLETE)
    left, right = _sources(session, job)
    left_path, right_path = storage.path(left.path), storage.path(right.path)
    rules = job.rules
    session.commit()
    mapped = [
        PartResult(
            records=storage.path(p["records"]), passes=p["passes"], breaks=int(p.get("breaks", 0))
        )
        for p in sorted(parts, key=lambda p: int(p["index"]))
    ]
    watch = JobWatch(
        session=session, job_id=job.id, attempt=attempt, heartbeat=state.engine.heartbeat_seconds
    )
    reporter = ProgressReporter(session, job.id, attempt)
    with watch:
        try:
            plan = plan_partitions(left_path, right_path, rules, len(mapped))
            summary = reduce_partitions(
                left_path,
                right_path,
                rules,
                plan,
                mapped,
                storage.path(state.dir) / "results.parquet",
                settings=Settings(
                    memory_limit=state.engine.memory_limit,
                    temp_dir=storage.tmp_dir / f"job-{job.id}-attempt-{attempt}",
                    threads=state.engine.threads,
                    max_candidates=state.engine.max_candidates,
                    progress=lambda f, name: reporter.progress(0.8 + 0.2 * f, f"reduce: {name}"),
                    should_cancel=watch.should_cancel,
                    on_connection=watch.attach,
                ),
            )
        except EngineCancelled:
            return end_attempt(session, storage, state, JobStatus.cancelled, "cancelled")
        except Exception as exc:
            if watch.cancelled.is_set():
                return end_attempt(session, storage, state, JobStatus.cancelled, "cancelled")
            if isinstance(exc, EngineError):
                return end_attempt(session, storage, state, JobStatus.failed, str(exc.detail))
            raise
        finally:
            storage.remove(f"tmp/job-{job.id}-attempt-{attempt}")
        summary["duration_seconds"] = round(time.perf_counter() - state.started, 3)
        outcome = publish_attempt(session, storage, state, summary, hooks.publish)
    if outcome.published:
        storage.remove(f"{state.dir}/{PARTS}")
    after_publish(state, outcome, hooks)
    return outcome


def revoke_parts(
    job: Job, revoke: Callable[[list[str]], None], storage: Storage, namespace: str
) -> None:
    """Revoke a partitioned job's queued tasks and drop its attempt's files (a cancel)."""
    parts = int(job.progress.get("partitions") or 0)
    ids = [part_task_id(namespace, job.id, job.attempt, i) for i in range(parts)]
    revoke([*ids, reduce_task_id(namespace, job.id, job.attempt)])
    storage.remove(storage.job_attempt_dir(job.project_id, job.id, job.attempt))
