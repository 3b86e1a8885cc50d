"""Background work: the Celery task and the in-process runners share ``run_job_now``."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from flask import Flask, current_app
from sqlalchemy import select

from instrumentation import route_context
from recon.cache_keys import analytics_key, job_key, job_state_key
from recon.extensions import db
from recon.jobs.attempts import fail_job
from recon.jobs.failures import MAX_RETRIES, TransientJobError, failure_sentence
from recon.jobs.models import Job
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
    )


def run_job_now(job_id: int) -> Outcome | None:
    """Run one attempt of the job in this app context (the task body of every runner)."""
    # The session is the app context's: Flask-SQLAlchemy removes it when the context ends.
    with route_context(f"task:{TASK_NAME}"):
        return execute_job(
            session=db.session,
            storage=current_app.extensions["recon_storage"],
            job_id=job_id,
            engine=engine_settings(current_app.config),
            hooks=Hooks(publish=current_app.extensions[PUBLISH_KEY], published=_invalidate),
        )


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
        outcome = run_job_now(job_id)
    except SoftTimeLimitExceeded:
        with route_context(f"task:{TASK_NAME}"):
            fail_job(session=db.session, job_id=job_id, error="The job hit its time limit.")
        return "failed"
    except TransientJobError as exc:
        if self.request.retries >= MAX_RETRIES:
            return _give_up(exc)
        raise self.retry(exc=exc, countdown=2**self.request.retries) from exc
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
        # A stale job goes back to the queue (a new attempt), as a redelivery would.
        app.extensions["recon_reaper"] = Reaper(app, requeue=app.extensions["recon_enqueue"])
        return
    if mode == "inline":
        app.extensions["recon_enqueue"] = InlineRunner(app)
    else:
        app.extensions["recon_enqueue"] = ThreadRunner(app, app.config["RECON_JOB_THREADS"])
    # In-process jobs die with their process: a stale one can only be failed.
    app.extensions["recon_reaper"] = Reaper(app, requeue=None)
