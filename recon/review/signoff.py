"""Sign-off: an owner declares a complete job reconciled, and its work is frozen.

A job is complete when every record is explained and nothing waits for approval
(``recon.review.state``). After sign-off, every change to the work the job holds
answers 409 ``job_signed_off``: the exceptions it reported (those a later job on the
pair has not taken over), their manual matches and approvals.
"""

from __future__ import annotations

from sqlalchemy import select

from recon.audit.service import SYSTEM, Actor, record
from recon.cache_keys import Cache, job_key
from recon.db_types import SessionLike, utcnow
from recon.errors import Conflict
from recon.jobs.models import Job, JobStatus
from recon.review.state import compute_state, decisions_changed, pair_key_of
from recon.storage import Storage


def signed_off_job(
    *, session: SessionLike, project_id: int, pair_key: str, job_id: int
) -> Job | None:
    """Return the signed-off job that holds work last reported by job ``job_id`` on the
    pair (the earliest such job at or after it), or None when the work is not frozen."""
    left, _, right = pair_key.partition(":")
    return session.scalars(
        select(Job)
        .where(
            Job.project_id == project_id,
            Job.left_source_id == int(left),
            Job.right_source_id == int(right),
            Job.signed_off_at.is_not(None),
            Job.id >= job_id,
        )
        .order_by(Job.id)
        .limit(1)
    ).first()


def ensure_unlocked(*, session: SessionLike, project_id: int, pair_key: str, job_id: int) -> None:
    """Raise Conflict ``job_signed_off`` when the work of job ``job_id`` is frozen."""
    frozen = signed_off_job(
        session=session, project_id=project_id, pair_key=pair_key, job_id=job_id
    )
    if frozen is not None:
        raise Conflict(
            f"Job {frozen.id} was signed off on {frozen.signed_off_at:%Y-%m-%d %H:%M} UTC; "
            "its exceptions, matches and approvals can no longer change.",
            code="job_signed_off",
            job_id=frozen.id,
        )


def sign_off(
    *,
    session: SessionLike,
    storage: Storage,
    job: Job,
    actor: Actor = SYSTEM,
    cache: Cache | None = None,
) -> Job:
    """Return the job signed off by ``actor``; Conflict when it is not complete."""
    if job.signed_off_at is not None:
        raise Conflict(f"Job {job.id} is already signed off.", code="job_signed_off")
    if job.status != JobStatus.succeeded or job.dry_run:
        raise Conflict(
            f"Job {job.id} has no results to sign off ({job.status.value}"
            f"{', dry run' if job.dry_run else ''}).",
            code="no_results",
        )
    state = compute_state(session=session, storage=storage, job=job, cache=cache)
    assert state is not None
    if not state["complete"]:
        raise Conflict(
            f"Job {job.id} is not complete: {state['unexplained']} record(s) are not explained "
            f"and {state['pending_approvals']} write-off(s) wait for approval.",
            code="job_incomplete",
            unexplained=state["unexplained"],
            pending_approvals=state["pending_approvals"],
        )
    job.signed_off_at = utcnow()
    job.signed_off_by_id = actor.id
    record(
        session=session,
        actor=actor,
        action="job.sign_off",
        object_type="job",
        object_id=job.id,
        project_id=job.project_id,
        after={
            "signed_off_at": job.signed_off_at.isoformat(),
            "match_rate": state["match_rate"],
            "explained_rate": state["explained_rate"],
        },
    )
    session.commit()
    if cache is not None:
        cache.delete(job_key(job.id))
    decisions_changed(
        session=session, cache=cache, project_id=job.project_id, pair_key=pair_key_of(job)
    )
    return job
