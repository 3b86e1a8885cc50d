"""Background work: the Celery task and the in-process runners share ``run_job_now``."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

from celery import chord, group, shared_task
from celery.exceptions import SoftTimeLimitExceeded
from flask import Flask, current_app
from sqlalchemy import select

from instrumentation import route_context
from recon.cache_keys import analytics_key, job_key, job_state_key
from recon.extensions import db
from recon.jobs.attempts import fail_job
from recon.jobs.failures import MAX_RETRIES, TransientJobError, failure_sentence
from recon.jobs.models import Job
from recon.jobs.partitioned import (
    part_task_id,
    reduce_parts,
    reduce_task_id,
    revoke_parts,
    run_part,
    start_parts,
)
from recon.jobs.reaper import Reaper
from recon.jobs.runner import (
    EngineSettings,
    Hooks,
    Outcome,
    PublishExceptions,
    execute_job,
)
from recon.jobs.service import QueueUnavailable

log = logging.getLogger("recon.jobs")

TASK_NAME = "recon.run_job"
PART_TASK = "recon.run_part"
REDUCE_TASK = "recon.reduce_job"
PUBLISH_KEY = "recon_job_publish"


def register_publish(app: Flask, publish: PublishExceptions) -> None:
    """Let the domain that owns exceptions write them when a job succeeds (the review's)."""
    app.extensions[PUBLISH_KEY] = publish


def _invalidate(job: Job) -> None:
    cache = current_app.extensions["recon_cache"]
    cache.delete(job_key(job.id))
    cache.delete(analytics_key(job.project_id))
    # A new job on a pair supersedes the earlier ones: their states name it.
    left, right = job.left_source_id, job.right_source_id
    for earlier in db.session.scalars(
        select(Job.id).where(
            Job.project_id == job.project_id,
            Job.left_source_id == left,
            Job.right_source_id == right,
        )
    ):
        cache.delete(job_state_key(earlier))


def engine_settings(config: Mapping[str, Any]) -> EngineSettings:
    """The engine and fault settings of a job attempt, from the app's config."""
    return EngineSettings(
        memory_limit=config["RECON_ENGINE_MEMORY_LIMIT"],
        max_candidates=config["RECON_MAX_CANDIDATES"],
        pause_after_claim=config["RECON_JOB_PAUSE_AFTER_CLAIM"],
        fault=config["RECON_JOB_FAULT"],
        # Several beats per stale period, so one slow write does not make a job look dead.
        heartbeat_seconds=max(1.0, config["RECON_JOB_STALE_SECONDS"] / 4),
        partition_rows=config["RECON_PARTITION_ROWS"],
        partitions=config["RECON_JOB_PARTITIONS"],
        pause_in_part=config["RECON_JOB_PAUSE_IN_PART"],
    )


def _hooks(*, partition: bool = False) -> Hooks:
    return Hooks(
        publish=current_app.extensions[PUBLISH_KEY],
        published=_invalidate,
        partition=partial(start_parts, dispatch=_dispatch) if partition else None,
    )


def run_job_now(job_id: int, *, partition: bool = False) -> Outcome | None:
    """Run one attempt of the job in this app context (the task body of every runner).

    ``partition`` (Celery): a big job is split and sent as a chord of parts.
    """
    # The session is the app context's: Flask-SQLAlchemy removes it when the context ends.
    with route_context(f"task:{TASK_NAME}"):
        return execute_job(
            session=db.session,
            storage=current_app.extensions["recon_storage"],
            job_id=job_id,
            engine=engine_settings(current_app.config),
            hooks=_hooks(partition=partition),
        )


def _dispatch(job_id: int, attempt: int, parts: int) -> None:
    """Send a partitioned job's chord: its parts on any workers, then the reduce."""
    namespace = current_app.config["RECON_CACHE_NAMESPACE"]
    header = group(
        run_job_part.si(job_id, attempt, i).set(task_id=part_task_id(namespace, job_id, attempt, i))
        for i in range(parts)
    )
    callback = reduce_job.s(job_id, attempt).set(task_id=reduce_task_id(namespace, job_id, attempt))
    chord(header)(callback)


def _give_up(exc: TransientJobError) -> str:
    """Fail a job whose transient failure is not retried; return the task's result."""
    error = failure_sentence(exc.step, exc.job_id, exc.attempt, transient=True)
    with route_context(f"task:{TASK_NAME}"):
        try:
            fail_job(session=db.session, job_id=exc.job_id, error=error)
        except Exception:  # still unreachable: the reaper ends the job once its heartbeat is stale
            log.exception(
                "job %s: could not be marked failed",
                exc.job_id,
                extra={"job_id": exc.job_id, "attempt": exc.attempt},
            )
    return "failed"


@shared_task(
    name=TASK_NAME, bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=MAX_RETRIES
)
def run_job(self, job_id: int) -> str | None:
    """Celery task: run the job; transient failures retry with backoff, then the job fails."""
    try:
        outcome = run_job_now(job_id, partition=True)
    except SoftTimeLimitExceeded:
        with route_context(f"task:{TASK_NAME}"):
            fail_job(session=db.session, job_id=job_id, error="The job hit its time limit.")
        return "failed"
    except TransientJobError as exc:
        if self.request.retries >= MAX_RETRIES:
            return _give_up(exc)
        raise self.retry(exc=exc, countdown=2**self.request.retries) from exc
    return outcome.status.value if outcome else None


@shared_task(
    name=PART_TASK,
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=MAX_RETRIES,
    ignore_result=False,  # the chord's reduce receives every part's result
)
def run_job_part(self, job_id: int, attempt: int, index: int) -> dict[str, Any]:
    """Celery task: the map of one part of a partitioned job; a transient failure retries it."""
    with route_context(f"task:{PART_TASK}"):
        try:
            return run_part(
                session=db.session,
                storage=current_app.extensions["recon_storage"],
                job_id=job_id,
                attempt=attempt,
                index=index,
                engine=engine_settings(current_app.config),
            )
        except TransientJobError as exc:
            if self.request.retries >= MAX_RETRIES:
                _give_up(exc)
                return {"index": index, "skipped": "failed"}
            raise self.retry(exc=exc, countdown=2**self.request.retries) from exc


@shared_task(name=REDUCE_TASK, acks_late=True, reject_on_worker_lost=True)
def reduce_job(parts: list[dict[str, Any]], job_id: int, attempt: int) -> str | None:
    """Celery task, the chord's callback: reduce the parts, publish the job."""
    with route_context(f"task:{REDUCE_TASK}"):
        try:
            outcome = reduce_parts(
                session=db.session,
                storage=current_app.extensions["recon_storage"],
                job_id=job_id,
                attempt=attempt,
                parts=parts,
                engine=engine_settings(current_app.config),
                hooks=_hooks(),
            )
        except TransientJobError as exc:
            # The attempt's files are gone with it: the job starts again (a new attempt).
            if attempt > MAX_RETRIES:
                return _give_up(exc)
            run_job.apply_async(args=[job_id], countdown=2**attempt)
            return "retried"
    return outcome.status.value if outcome else None


def run_here(job_id: int) -> None:
    """Run the job in this process, which has no retries: a transient failure fails it."""
    try:
        run_job_now(job_id)
    except TransientJobError as exc:
        _give_up(exc)


class ThreadRunner:
    """Without Redis: the same task code on a bounded pool of threads in the web process."""

    def __init__(self, app: Flask, workers: int) -> None:
        self.app = app
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="recon-job")

    def _run(self, job_id: int) -> None:
        with self.app.app_context():
            run_here(job_id)

    def __call__(self, job_id: int) -> None:
        self.pool.submit(self._run, job_id)


class InlineRunner:
    """Runs the job before the request returns (tests, and the demo loader)."""

    def __init__(self, app: Flask) -> None:
        self.app = app

    def __call__(self, job_id: int) -> None:
        run_here(job_id)


def _revoke(job: Job) -> None:
    """A cancel of a partitioned job: its queued parts and reduce are revoked, its files go."""
    celery = current_app.extensions["celery"]
    revoke_parts(
        job,
        celery.control.revoke,
        current_app.extensions["recon_storage"],
        current_app.config["RECON_CACHE_NAMESPACE"],
    )


class CeleryRunner:
    """With Redis: a message carrying only the job id."""

    def __call__(self, job_id: int) -> None:
        from kombu.exceptions import OperationalError as BrokerError

        try:
            run_job.apply_async(args=[job_id], retry=True)
        except (BrokerError, OSError) as exc:
            raise QueueUnavailable(str(exc)) from exc


def init_app(app: Flask) -> None:
    """Choose the runner: Celery with Redis, else threads (or inline when configured)."""
    mode = app.config["RECON_JOB_RUNNER"]
    if mode == "auto":
        mode = "celery" if app.config["RECON_REDIS_URL"] else "thread"
    if mode == "celery":
        from recon.celery_app import celery_init_app

        celery_init_app(app)
        app.extensions["recon_enqueue"] = CeleryRunner()
        app.extensions["recon_revoke"] = _revoke
        # A stale job goes back to the queue (a new attempt), as a redelivery would.
        app.extensions["recon_reaper"] = Reaper(app, requeue=app.extensions["recon_enqueue"])
        return
    if mode == "inline":
        app.extensions["recon_enqueue"] = InlineRunner(app)
    else:
        app.extensions["recon_enqueue"] = ThreadRunner(app, app.config["RECON_JOB_THREADS"])
    # In-process jobs die with their process: a stale one can only be failed.
    app.extensions["recon_reaper"] = Reaper(app, requeue=None)
