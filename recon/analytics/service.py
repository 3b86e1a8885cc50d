"""Project analytics: match rates per job and pass, auto vs manual share, open exceptions by
age and kind, unreconciled amounts per currency, job durations and volumes.

A handful of aggregate queries, cached under ``project:<pid>:analytics``; the
cache entry is dropped whenever an exception changes or a job finishes
(``invalidate_analytics``), so the numbers are never staler than the last write.

Definitions:

- jobs: the project's finished jobs (the latest ``MAX_JOBS``), oldest first;
  ``duration_seconds`` is start to finish (engine and publishing), else the
  engine's own figure.
- auto: records the engine matched in the latest succeeded, non-dry-run job of
  each sources pair (both sides). manual: exceptions people resolved or closed
  (accepted suggestions and manual matches included; not those a later job
  closed by matching them, which the engine's count already holds).
- age: whole days since ``opened_at``: 0-1, 2-7, 8-30, >30.
- unreconciled: the amounts of open, assigned and reopened exceptions, per
  currency ('' when the record has none) and side, exact.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol, TypeVar

from sqlalchemy import and_, case, func, or_, select

from instrumentation import db_query_timer
from recon.db_types import SessionLike, utcnow
from recon.jobs.models import Job, JobStatus
from recon.projects.models import Project
from recon.review.models import (
    OPEN_STATUSES,
    ExceptionKind,
    ExceptionStatus,
    ManualMatch,
    ReconException,
)

T = TypeVar("T")
MAX_JOBS = 500
AGE_BUCKETS = (("0-1", 0, 1), ("2-7", 2, 7), ("8-30", 8, 30), (">30", 31, None))
CLOSED_BY_JOB = "matched_by_job"
FINISHED = (JobStatus.succeeded, JobStatus.failed, JobStatus.cancelled)


class Cache(Protocol):
    def delete(self, key: str) -> None: ...
    def get_or_set(self, key: str, loader: Callable[[], T], ttl: float | None = None) -> T: ...


def analytics_key(project_id: int) -> str:
    """Return the cache key of the project's analytics."""
    return f"project:{project_id}:analytics"


def invalidate_analytics(*, cache: Cache | None, project_id: int) -> None:
    """Drop the project's cached analytics (after an exception changed or a job finished)."""
    if cache is not None:
        cache.delete(analytics_key(project_id))


def get_analytics(
    *, session: SessionLike, project: Project, cache: Cache | None = None, ttl: float | None = None
) -> dict[str, Any]:
    """Return the project's analytics (JSON-safe), from the cache when it holds them."""
    project_id = project.id

    def load() -> dict[str, Any]:
        return compute_analytics(session=session, project_id=project_id)

    if cache is None:
        return load()
    return cache.get_or_set(analytics_key(project_id), load, ttl)


def compute_analytics(
    *, session: SessionLike, project_id: int, now: datetime | None = None
) -> dict[str, Any]:
    """Return the project's analytics computed from the database now."""
    now = now or utcnow()
    jobs = _jobs(session, project_id)
    manual = _manual(session, project_id)
    auto = _auto(jobs)
    done = auto + manual["records"]
    durations = [j["duration_seconds"] for j in jobs if j["duration_seconds"] is not None]
    return {
        "generated_at": now.isoformat(),
        "jobs": jobs,
        "volumes": {
            "jobs": {s.value: sum(1 for j in jobs if j["status"] == s.value) for s in FINISHED},
            "rows": sum(j["left_rows"] + j["right_rows"] for j in jobs),
            "mean_duration_seconds": round(sum(durations) / len(durations), 3)
            if durations
            else None,
            "max_duration_seconds": max(durations) if durations else None,
        },
        "auto_vs_manual": {
            "auto": auto,
            "manual": manual["records"],
            "manual_matches": manual["matches"],
            "auto_share": round(auto / done, 4) if done else None,
            "manual_share": round(manual["records"] / done, 4) if done else None,
        },
        "open_exceptions": _open_exceptions(session, project_id, now),
        "exceptions_by_status": _by_status(session, project_id),
        "unreconciled": _unreconciled(session, project_id),
    }


def _duration(started: datetime | None, finished: datetime | None, summary: dict) -> float | None:
    if started is not None and finished is not None:
        return round((finished - started).total_seconds(), 3)
    value = summary.get("duration_seconds")
    return None if value is None else float(value)


def _jobs(session: SessionLike, project_id: int) -> list[dict[str, Any]]:
    with db_query_timer("select", "jobs"):
        rows = session.execute(
            select(
                Job.id,
                Job.status,
                Job.dry_run,
                Job.left_source_id,
                Job.right_source_id,
                Job.started_at,
                Job.finished_at,
                Job.summary,
            )
            .where(Job.project_id == project_id, Job.status.in_(FINISHED))
            .order_by(Job.finished_at.desc(), Job.id.desc())
            .limit(MAX_JOBS)
        ).all()
    out = []
    for jid, status, dry_run, left_id, right_id, started, finished, summary in reversed(rows):
        summary = summary or {}
        left, right = summary.get("left") or {}, summary.get("right") or {}
        out.append(
            {
                "id": jid,
                "status": JobStatus(status).value,
                "dry_run": bool(dry_run),
                "pair": f"{left_id}:{right_id}",
                "started_at": started.isoformat() if started else None,
                "finished_at": finished.isoformat() if finished else None,
                "duration_seconds": _duration(started, finished, summary),
                "left_rows": int(left.get("rows", 0)),
                "right_rows": int(right.get("rows", 0)),
                "matched_rows": _matched(summary),
                "match_rate": summary.get("match_rate"),
                "passes": [
                    {
                        k: p.get(k)
                        for k in (
                            "name",
                            "action",
                            "matches",
                            "left_rows",
                            "right_rows",
                            "match_rate",
                        )
                    }
                    for p in summary.get("passes") or []
                ],
            }
        )
    return out


def _matched(summary: dict[str, Any]) -> int:
    return sum(
        int(((summary.get(side) or {}).get("by_status") or {}).get("matched", {}).get("rows", 0))
        for side in ("left", "right")
    )


def _auto(jobs: list[dict[str, Any]]) -> int:
    latest: dict[str, dict[str, Any]] = {}
    for job in jobs:  # oldest first: the last one seen per pair wins
        if job["status"] == JobStatus.succeeded.value and not job["dry_run"]:
            latest[job["pair"]] = job
    return sum(job["matched_rows"] for job in latest.values())


def _manual(session: SessionLike, project_id: int) -> dict[str, int]:
    with db_query_timer("select", "exceptions"):
        records = session.scalar(
            select(func.count())
            .select_from(ReconException)
            .where(
                ReconException.project_id == project_id,
                ReconException.status.in_((ExceptionStatus.resolved, ExceptionStatus.closed)),
                or_(
                    ReconException.reason_code.is_(None),
                    ReconException.reason_code != CLOSED_BY_JOB,
                ),
            )
        )
    with db_query_timer("select", "manual_matches"):
        matches = session.scalar(
            select(func.count())
            .select_from(ManualMatch)
            .where(ManualMatch.project_id == project_id)
        )
    return {"records": int(records or 0), "matches": int(matches or 0)}


def _open_exceptions(session: SessionLike, project_id: int, now: datetime) -> dict[str, Any]:
    columns = []
    for _name, low, high in AGE_BUCKETS:
        # age >= low  <=>  opened_at <= now - low days;  age <= high  <=>  opened > now - (high+1)
        conditions = [ReconException.opened_at <= now - timedelta(days=low)]
        if high is not None:
            conditions.append(ReconException.opened_at > now - timedelta(days=high + 1))
        columns.append(func.sum(case((and_(*conditions), 1), else_=0)))
    where = (ReconException.project_id == project_id, ReconException.status.in_(OPEN_STATUSES))
    with db_query_timer("select", "exceptions"):
        ages = session.execute(select(*columns).where(*where)).one()
        kinds = dict(
            session.execute(
                select(ReconException.kind, func.count())
                .where(*where)
                .group_by(ReconException.kind)
            ).all()
        )
    return {
        "total": sum(int(kinds.get(k, 0)) for k in ExceptionKind),
        "by_age": {name: int(n or 0) for (name, _, _), n in zip(AGE_BUCKETS, ages, strict=True)},
        "by_kind": {k.value: int(kinds.get(k, 0)) for k in ExceptionKind},
    }


def _by_status(session: SessionLike, project_id: int) -> dict[str, int]:
    with db_query_timer("select", "exceptions"):
        counts = dict(
            session.execute(
                select(ReconException.status, func.count())
                .where(ReconException.project_id == project_id)
                .group_by(ReconException.status)
            ).all()
        )
    return {s.value: int(counts.get(s, 0)) for s in ExceptionStatus}


def _unreconciled(session: SessionLike, project_id: int) -> list[dict[str, Any]]:
    currency = func.coalesce(ReconException.currency, "")
    with db_query_timer("select", "exceptions"):
        rows = session.execute(
            select(
                currency,
                ReconException.scale,
                ReconException.side,
                func.sum(ReconException.amount_minor),
                func.count(),
            )
            .where(
                ReconException.project_id == project_id, ReconException.status.in_(OPEN_STATUSES)
            )
            .group_by(currency, ReconException.scale, ReconException.side)
        ).all()
    totals: dict[str, dict[str, Any]] = {}
    for ccy, scale, side, minor, count in rows:
        entry = totals.setdefault(
            ccy, {"scale": 0, "left": Decimal(0), "right": Decimal(0), "records": 0}
        )
        entry["scale"] = max(entry["scale"], int(scale))
        entry[side] += Decimal(int(minor)).scaleb(-int(scale))
        entry["records"] += int(count)
    out = []
    for ccy in sorted(totals):
        entry = totals[ccy]
        exp = Decimal(1).scaleb(-entry["scale"])
        out.append(
            {
                "currency": ccy,
                "amount": format((entry["left"] + entry["right"]).quantize(exp), "f"),
                "left": format(entry["left"].quantize(exp), "f"),
                "right": format(entry["right"].quantize(exp), "f"),
                "records": entry["records"],
            }
        )
    return out
