"""How a job's pipeline fails: its steps, what a person reads, what is transient, the log line.

A step that fails for a reason inside recon ends the job ``failed`` with the sentence of
``failure_sentence``; one that fails on an outage (``TRANSIENT``: the database or Redis
unreachable) raises ``TransientJobError`` so the queue retries it, up to ``MAX_RETRIES``.
``RECON_JOB_FAULT`` makes a step fail on purpose (tests and drills).
"""

from __future__ import annotations

import enum
import logging

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy.exc import InterfaceError, OperationalError

from instrumentation import record_job_error

log = logging.getLogger("recon.jobs")

MAX_RETRIES = 3  # retries of a job after its first attempt (Celery retries, reaper re-queues)
TRANSIENT = (OperationalError, InterfaceError, RedisConnectionError, RedisTimeoutError)


class Step(enum.StrEnum):
    claim = "claim"
    engine = "engine"
    publish = "publish"
    audit = "audit"
    commit = "commit"
    invalidation = "invalidation"


# What a person reads in the job's ``error`` when a step fails for a reason inside recon.
FAILED_AT = {
    Step.claim: "The job could not be started",
    Step.engine: "The matching engine stopped on an internal error",
    Step.publish: "The results could not be published as exceptions",
    Step.audit: "The job's audit record could not be written",
    Step.commit: "The job's results could not be saved",
    Step.invalidation: "The cached views of the job could not be refreshed",
}


def failure_sentence(step: Step, job_id: int, attempt: int | None, *, transient: bool) -> str:
    """The ``error`` of a job that failed at ``step``: what happened and where to look."""
    why = " because the database was not reachable" if transient else ""
    which = f"job {job_id}" + (f", attempt {attempt}" if attempt else "")
    return (
        f"{FAILED_AT[step]}{why}; nothing was published. Run the job again; the details "
        f"are in the log of {which}."
    )


class InjectedFault(RuntimeError):
    """Raised at a step named by RECON_JOB_FAULT (tests and drills)."""


class TransientJobError(Exception):
    """A step failed on an outage; the job is still running at ``attempt`` and may be retried."""

    def __init__(self, job_id: int, attempt: int | None, step: Step) -> None:
        super().__init__(f"job {job_id} attempt {attempt}: transient failure at {step}")
        self.job_id, self.attempt, self.step = job_id, attempt, step


def inject_fault(fault: str | None, step: Step) -> None:
    """Raise at ``step`` when RECON_JOB_FAULT names it (``<step>`` or ``<step>:transient``)."""
    if not fault:
        return
    name, _, kind = fault.partition(":")
    if name != step.value:
        return
    if kind == "transient":
        raise OperationalError(
            f"fault injected at {step}", None, ConnectionError("RECON_JOB_FAULT")
        )
    raise InjectedFault(f"fault injected at {step} (RECON_JOB_FAULT)")


def log_failure(
    job_id: int, attempt: int | None, step: Step, exc: BaseException, *, transient: bool
) -> None:
    """Count the failure and log it as one line with the job, attempt, step and traceback."""
    record_job_error(step.value)
    log.error(
        "job %s attempt %s failed at %s: %s",
        job_id,
        attempt,
        step.value,
        type(exc).__name__,
        exc_info=exc,
        extra={
            "job_id": job_id,
            "attempt": attempt,
            "step": step.value,
            "transient": transient,
        },
    )
