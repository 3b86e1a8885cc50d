"""Jobs: create (validate, lock the sources pair, enqueue), read, list, cancel.

Running a job is recon.jobs.runner; reading its results is recon.jobs.results.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from instrumentation import db_query_timer, record_job
from recon.audit.service import SYSTEM, Actor, record
from recon.db_types import SessionLike, utcnow
from recon.engine import validate_rules
from recon.errors import Conflict, NotFound, ServiceUnavailable, ValidationError
from recon.jobs.models import ACTIVE, Job, JobStatus
from recon.jobs.rulesets import get_ruleset
from recon.pagination import Page, paginate
from recon.projects.models import Project
from recon.sources.models import Source


class QueueUnavailable(Exception):
    """The job queue (Redis) did not take the job."""


def _source(session: SessionLike, project: Project, source_id: int, field: str) -> Source:
    source = session.get(Source, source_id)
    if source is None or source.project_id != project.id:
        raise ValidationError(
            f"Source {source_id} does not exist in this project.",
            errors=[{"field": field, "message": f"no source {source_id} in this project"}],
        )
    return source


def active_job_for_pair(
    *, session: SessionLike, project_id: int, left_source_id: int, right_source_id: int
) -> Job | None:
    """Return the queued or running job on this sources pair, if any."""
    return session.scalars(
        select(Job).where(
            Job.project_id == project_id,
            Job.left_source_id == left_source_id,
            Job.right_source_id == right_source_id,
            Job.status.in_(ACTIVE),
        )
    ).first()


def _busy(job: Job) -> Conflict:
    return Conflict(
        f"Job {job.id} is already {job.status.value} on these sources; wait for it or cancel it.",
        code="job_already_running",
        running_job_id=job.id,
    )


def create_job(
    *,
    session: SessionLike,
    project: Project,
    left_source_id: int,
    right_source_id: int,
    rules: dict[str, Any] | None = None,
    ruleset_id: int | None = None,
    dry_run: bool = False,
    enqueue: Callable[[int], None],
    actor: Actor = SYSTEM,
) -> Job:
    """Return a new queued job, handed to ``enqueue``.

    One queued or running job per sources pair (a unique partial index keeps it
    true across processes); a second one is a Conflict naming the first. When the
    queue refuses the job it is marked failed at once (never left queued) and
    ServiceUnavailable is raised.
    """
    if left_source_id == right_source_id:
        raise ValidationError(
            "Left and right must be different sources.",
            errors=[{"field": "right_source_id", "message": "same as left_source_id"}],
        )
    left = _source(session, project, left_source_id, "left_source_id")
    right = _source(session, project, right_source_id, "right_source_id")
    ruleset = None
    if ruleset_id is not None:
        ruleset = get_ruleset(session=session, project=project, ruleset_id=ruleset_id)
        rules = ruleset.rules
    if rules is None:
        raise ValidationError(
            "Give rules or a ruleset_id.",
            errors=[{"field": "rules", "message": "rules or ruleset_id is required"}],
        )
    normalised = validate_rules(rules, fields=set(left.fields) & set(right.fields))
    _refuse_keyless(normalised, left, right)
    running = active_job_for_pair(
        session=session,
        project_id=project.id,
        left_source_id=left_source_id,
        right_source_id=right_source_id,
    )
    if running is not None:
        raise _busy(running)
    job = Job(
        project_id=project.id,
        left_source_id=left_source_id,
        right_source_id=right_source_id,
        ruleset_id=ruleset.id if ruleset else None,
        ruleset_version=ruleset.version if ruleset else None,
        rules=normalised,
        dry_run=dry_run,
        status=JobStatus.queued,
        progress={"fraction": 0.0, "pass": None},
        created_by_id=actor.id,
    )
    session.add(job)
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        running = active_job_for_pair(
            session=session,
            project_id=project.id,
            left_source_id=left_source_id,
            right_source_id=right_source_id,
        )
        if running is None:
            raise
        raise _busy(running) from None
    record(
        session=session,
        actor=actor,
        action="job.create",
        object_type="job",
        object_id=job.id,
        project_id=project.id,
        after={
            "left_source_id": left_source_id,
            "right_source_id": right_source_id,
            "ruleset_id": job.ruleset_id,
            "ruleset_version": job.ruleset_version,
            "dry_run": dry_run,
        },
    )
    session.commit()
    try:
        enqueue(job.id)
    except QueueUnavailable as exc:
        _fail_unqueued(session, job, str(exc))
        raise ServiceUnavailable(
            "The job queue is not answering; the job was not started. Try again shortly.",
            code="queue_unavailable",
            headers={"Retry-After": "10"},
            job_id=job.id,
        ) from None
    return job


def _refuse_keyless(rules: dict[str, Any], left: Source, right: Source) -> None:
    """A pass or break_on on the key needs a key on both sides: refused naming the pass."""
    keyless = [
        f"{side} source {s.id} ({s.name!r})"
        for side, s in (("left", left), ("right", right))
        if not s.has_key
    ]
    passes = [(i, p["name"]) for i, p in enumerate(rules["passes"]) if "key" in p["match_on"]]
    on_key = "key" in rules["break_on"]
    if not keyless or not (passes or on_key):
        return
    errors = [
        {"field": f"passes[{i}].match_on", "message": f"pass {name!r} matches on key"}
        for i, name in passes
    ]
    if on_key:
        errors.append({"field": "break_on", "message": "breaks are paired on key"})
    what = ", ".join(f"pass {name!r}" for _, name in passes) or "break_on key"
    raise ValidationError(
        f"The {' and the '.join(keyless)} has no key column, so {what} can not run: match "
        "on other fields (amount, date, a mapping.fields field), set break_on to [] or to "
        "other fields, or upload the source with a key.",
        code="source_has_no_key",
        errors=errors,
    )


def _fail_unqueued(session: SessionLike, job: Job, error: str) -> None:
    session.execute(
        update(Job)
        .where(Job.id == job.id, Job.status == JobStatus.queued)
        .values(
            status=JobStatus.failed, error=f"could not be queued: {error}", finished_at=utcnow()
        )
    )
    session.commit()
    record_job(JobStatus.failed.value, None)


def get_job(*, session: SessionLike, project: Project, job_id: int) -> Job:
    """Return the project's job ``job_id`` or raise NotFound."""
    with db_query_timer("select", "jobs"):
        job = session.get(Job, job_id)
    if job is None or job.project_id != project.id:
        raise NotFound(f"Job {job_id} does not exist in this project.")
    return job


def get_jobs(
    *,
    session: SessionLike,
    project: Project,
    status: str | None = None,
    page: int = 1,
    per_page: int = 50,
) -> Page[Job]:
    """Return a page of the project's jobs, newest first."""
    query = select(Job).where(Job.project_id == project.id).order_by(Job.id.desc())
    if status:
        query = query.where(Job.status == JobStatus(status))
    with db_query_timer("select", "jobs"):
        return paginate(session, query, page=page, per_page=per_page)


def cancel_job(
    *,
    session: SessionLike,
    job: Job,
    actor: Actor = SYSTEM,
    revoke: Callable[[Job], None] | None = None,
) -> Job:
    """Return the job cancelled (queued) or asked to stop (running: its watch thread sees the
    request within a second and interrupts the DuckDB statement, recon.jobs.watch).

    A job in its map phase (partitions on Celery) ends cancelled at once: ``revoke``
    revokes its queued parts and removes its files, and running parts stop on the flag.
    """
    if job.status.finished:
        raise Conflict(f"Job {job.id} has already {job.status.value}.", code="job_finished")
    before = {"status": job.status.value}
    mapping = job.status == JobStatus.running and (job.progress or {}).get("pass") == "map"
    if job.status == JobStatus.queued or (mapping and revoke is not None):
        job.status = JobStatus.cancelled
        if mapping:  # as a running attempt that ends cancelled says
            job.error = "cancelled"
        job.finished_at = utcnow()
        record_job(JobStatus.cancelled.value, None)
    job.cancel_requested = True
    record(
        session=session,
        actor=actor,
        action="job.cancel",
        object_type="job",
        object_id=job.id,
        project_id=job.project_id,
        before=before,
        after={"status": job.status.value, "cancel_requested": True},
    )
    session.commit()
    if mapping and revoke is not None:
        revoke(job)
    return job


def source_in_use(*, session: SessionLike, source: Source) -> str | None:
    """Return which job uses ``source`` (a running one first), or None.

    Finished jobs count too: their results and exceptions point at the source's rows.
    """
    jobs = list(
        session.scalars(
            select(Job)
            .where(
                (Job.left_source_id == source.id) | (Job.right_source_id == source.id),
            )
            .order_by(Job.id.desc())
        )
    )
    if not jobs:
        return None
    active = [job for job in jobs if job.status in ACTIVE]
    job = (active or jobs)[0]
    more = f" and {len(jobs) - 1} other job(s)" if len(jobs) > 1 else ""
    return f"job {job.id} ({job.status.value}){more}"


def fail_interrupted_jobs(*, session: SessionLike) -> int:
    """Mark queued and running jobs failed; return how many.

    For the in-process runner only, at start-up: its jobs die with the process, and a
    job left "running" would hold its sources pair's lock for ever.
    """
    result = session.execute(
        update(Job)
        .where(Job.status.in_(ACTIVE))
        .values(
            status=JobStatus.failed,
            finished_at=utcnow(),
            error="interrupted: the server stopped while the job was queued or running",
        )
    )
    session.commit()
    return int(getattr(result, "rowcount", 0) or 0)
