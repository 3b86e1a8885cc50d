"""The current state of a job's records: the engine's answer with people's decisions applied.

People's decisions live on the exceptions of the job's sources pair (identity: project,
pair, side, row; they carry over to every later job on the pair) and on their manual
matches. ``overrides`` turns them into the small table ``recon.jobs.results`` joins with
the results Parquet; nothing is written back to the results.

How a decision shows, for a record the engine did not match:

- in an active manual match (exception resolved ``matched_manually``): ``matched``,
  pass ``manual``, ``match_id`` the lowest left row of the manual match, decided by a
  person (only while every record of the manual match is unmatched by the engine);
- an accepted suggestion (resolved ``matched_by_suggestion``): ``matched`` in the
  suggestion's pass, decided by a person;
- a rejected suggestion (``rejected_pass`` set, the exception still unmatched):
  ``unmatched``, decided by a person;
- resolved or closed with any other reason code: the engine's status, ``explained``;
- awaiting approval: the engine's status, ``pending``, not explained.

A job's ``state`` (``job_state``): match rates (engine + people, engine only, people
only), ``explained_rate``, ``complete`` (every record explained, nothing pending),
``pending_approvals``, sign-off, and ``superseded_by`` (a later job on the same pair).
It is cached under ``job:<id>:state`` and dropped, with the project's analytics, by
``decisions_changed`` after every decision on the pair.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
from sqlalchemy import String, func, select, type_coerce

from recon.cache_keys import Cache, analytics_key, job_decisions_key, job_state_key
from recon.db_types import SessionLike
from recon.jobs.models import Job, JobStatus
from recon.jobs.results import Reader, get_results, require_results, resolve_overrides
from recon.jobs.results_sql import APPLIED, NO_OVERRIDES, OVERRIDES, Filters
from recon.pagination import Page
from recon.review.models import (
    Approval,
    ApprovalStatus,
    ExceptionKind,
    ExceptionStatus,
    ManualMatch,
    ManualMatchStatus,
    ReconException,
)
from recon.sources.models import Source
from recon.storage import Storage

CLOSED_BY_JOB = "matched_by_job"
ACCEPTED = "matched_by_suggestion"
MATCHED_MANUALLY = "matched_manually"
MANUAL = "manual"
DECIDED = (ExceptionStatus.resolved, ExceptionStatus.closed, ExceptionStatus.pending_approval)


def pair_key_of(job: Job) -> str:
    """Return the key of the job's sources pair, the scope in which decisions carry over."""
    return f"{job.left_source_id}:{job.right_source_id}"


def _override(
    exc: tuple[Any, ...], manual: dict[int, tuple[ManualMatchStatus, int]]
) -> dict[str, Any] | None:
    side, row, status, reason, kind, pass_name, match_id, rejected, mm_id = exc
    status = ExceptionStatus(status)
    out: dict[str, Any] = {
        "side": side,
        "row": int(row),
        "status": None,
        "pass": None,
        "match_id": None,
        "grp": None,
        "explained": False,
        "pending": False,
        "reason_code": reason,
    }
    if status == ExceptionStatus.pending_approval:
        out["pending"] = True
        return out
    resolved = status in (ExceptionStatus.resolved, ExceptionStatus.closed) and reason
    if resolved and reason == CLOSED_BY_JOB:
        return None  # a later job matched it: the engine's decision, not a person's
    if resolved and reason == MATCHED_MANUALLY and mm_id in manual:
        mm_status, lowest_left = manual[mm_id]
        if mm_status == ManualMatchStatus.active:
            out.update({"status": "matched", "pass": MANUAL, "match_id": lowest_left, "grp": mm_id})
    elif resolved and reason == ACCEPTED:
        out.update({"status": "matched", "pass": pass_name, "match_id": match_id})
    elif rejected is not None and ExceptionKind(kind) == ExceptionKind.unmatched:
        out["status"] = "unmatched"
    out["explained"] = bool(resolved)
    if out["status"] is None and not out["explained"]:
        return None
    return out


def overrides(*, session: SessionLike, job: Job) -> pa.Table:
    """Return people's decisions on the records of the job's sources pair (OVERRIDES)."""
    # Core columns, statuses as plain text: thousands of rows, no ORM objects needed.
    t = ReconException.__table__.c
    columns = select(
        t.side,
        t.row,
        type_coerce(t.status, String),
        t.reason_code,
        type_coerce(t.kind, String),
        t.pass_name,
        t.match_id,
        t.rejected_pass,
        t.manual_match_id,
    ).where(t.project_id == job.project_id, t.pair_key == pair_key_of(job))
    decided = t.status.in_([s.value for s in DECIDED])
    # Two reads, each on its own index (ix_exceptions_pair_status, the partial
    # ix_exceptions_rejected): one with an OR scans every exception of the pair.
    rows = [
        *session.execute(columns.where(decided)),
        *session.execute(columns.where(t.rejected_pass.is_not(None), ~decided)),
    ]
    ids = sorted({r[-1] for r in rows if r[-1] is not None})
    m = ManualMatch.__table__.c
    manual: dict[int, tuple[ManualMatchStatus, int]] = {}
    for start in range(0, len(ids), 5000):  # well under every backend's parameter limit
        for mm_id, status, left_rows in session.execute(
            select(m.id, type_coerce(m.status, String), m.left_rows).where(
                m.id.in_(ids[start : start + 5000])
            )
        ):
            manual[mm_id] = (ManualMatchStatus(status), min(left_rows) if left_rows else -1)
    found = [o for o in (_override(tuple(r), manual) for r in rows) if o is not None]
    return pa.Table.from_pylist(found, schema=OVERRIDES)


def _sources(session: SessionLike, job: Job) -> tuple[Source, Source]:
    left = session.get(Source, job.left_source_id)
    right = session.get(Source, job.right_source_id)
    assert left is not None and right is not None  # the foreign keys keep them
    return left, right


def applied_overrides(
    *, session: SessionLike, storage: Storage, job: Job, cache: Cache | None = None
) -> pa.Table:
    """Return the decisions that apply to the job's records (APPLIED), from the cache when it
    holds them: reading them joins the decisions with the whole results file once."""

    def load() -> dict[str, list[Any]]:
        left, right = _sources(session, job)
        raw = overrides(session=session, job=job)
        table = resolve_overrides(storage=storage, job=job, left=left, right=right, overrides=raw)
        # By column: a fifth of the time a list of records takes to decode and rebuild.
        return table.to_pydict()

    columns = load() if cache is None else cache.get_or_set(job_decisions_key(job.id), load)
    return pa.Table.from_pydict(columns, schema=APPLIED)


def _rate(part: int, total: int) -> float:
    return round(part / total, 4) if total else 0.0


def later_job(*, session: SessionLike, job: Job) -> int | None:
    """Return the id of the latest succeeded job on the same pair after ``job``, if any."""
    return session.scalar(
        select(func.max(Job.id)).where(
            Job.project_id == job.project_id,
            Job.left_source_id == job.left_source_id,
            Job.right_source_id == job.right_source_id,
            Job.status == JobStatus.succeeded,
            Job.dry_run.is_(False),
            Job.id > job.id,
        )
    )


def pending_approvals(*, session: SessionLike, job: Job) -> int:
    """Return how many write-offs on the job's sources pair wait for approval."""
    pair_jobs = select(Job.id).where(
        Job.project_id == job.project_id,
        Job.left_source_id == job.left_source_id,
        Job.right_source_id == job.right_source_id,
    )
    return int(
        session.scalar(
            select(func.count())
            .select_from(Approval)
            .where(Approval.job_id.in_(pair_jobs), Approval.status == ApprovalStatus.pending)
        )
        or 0
    )


def compute_state(
    *, session: SessionLike, storage: Storage, job: Job, cache: Cache | None = None
) -> dict[str, Any] | None:
    """Return the job's current state (None while it has no results)."""
    if job.status != JobStatus.succeeded or not job.result_path:
        return None
    left, right = _sources(session, job)
    table = applied_overrides(session=session, storage=storage, job=job, cache=cache)
    with Reader(storage=storage, job=job, left=left, right=right, overrides=table) as reader:
        counts = reader.counts()
    by_side = {
        side: {
            "records": sum(v for k, v in bucket.items() if k.startswith("status:")),
            "matched": bucket.get("status:matched", 0),
            "manual": bucket.get("decided_by:person:matched", 0),
            "explained": bucket.get("explained:True", 0),
            "pending": bucket.get("pending:True", 0),
        }
        for side, bucket in counts.items()
    }
    total, matched, manual, explained, pending = (
        sum(s[k] for s in by_side.values())
        for k in ("records", "matched", "manual", "explained", "pending")
    )
    waiting = pending_approvals(session=session, job=job)
    return {
        "records": total,
        "match_rate": _rate(matched, total),
        "auto_match_rate": _rate(matched - manual, total),
        "manual_match_rate": _rate(manual, total),
        "explained_rate": _rate(explained, total),
        "unexplained": total - explained,
        "complete": explained == total and waiting == 0 and pending == 0,
        "pending_approvals": waiting,
        "signed_off_at": job.signed_off_at.isoformat() if job.signed_off_at else None,
        "signed_off_by": job.signed_off_by_id,
        "superseded_by": later_job(session=session, job=job),
        "by_side": by_side,
    }


def job_state(
    *, session: SessionLike, storage: Storage, job: Job, cache: Cache | None = None
) -> dict[str, Any] | None:
    """Return the job's current state, from the cache when it holds it."""
    if cache is None or job.status != JobStatus.succeeded:
        return compute_state(session=session, storage=storage, job=job)
    return cache.get_or_set(
        job_state_key(job.id),
        lambda: compute_state(session=session, storage=storage, job=job, cache=cache),
    )


def decisions_changed(
    *, session: SessionLike, cache: Cache | None, project_id: int, pair_key: str | None = None
) -> None:
    """Drop what a decision makes stale: the project's analytics and the states of the jobs
    on the pair (every job of the project when ``pair_key`` is None)."""
    if cache is None:
        return
    cache.delete(analytics_key(project_id))
    query = select(Job.id).where(Job.project_id == project_id, Job.status == JobStatus.succeeded)
    if pair_key is not None:
        left, _, right = pair_key.partition(":")
        query = query.where(Job.left_source_id == int(left), Job.right_source_id == int(right))
    for job_id in session.scalars(query):
        cache.delete(job_state_key(job_id))
        cache.delete(job_decisions_key(job_id))


def get_current_results(
    *,
    session: SessionLike,
    storage: Storage,
    job: Job,
    view: str = "current",
    filters: Filters | None = None,
    page: int = 1,
    per_page: int = 50,
    after: str | None = None,
    cache: Cache | None = None,
) -> Page[dict[str, Any]]:
    """Return a page of the job's records in their current state (``view="engine"``: the
    engine's answer alone)."""
    require_results(job)
    left, right = _sources(session, job)
    table = (
        applied_overrides(session=session, storage=storage, job=job, cache=cache)
        if view == "current"
        else NO_OVERRIDES
    )
    return get_results(
        storage=storage,
        job=job,
        left=left,
        right=right,
        overrides=table,
        filters=filters or Filters(),
        page=page,
        per_page=per_page,
        after=after,
    )
