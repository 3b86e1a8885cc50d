"""Project analytics: match rates per job and pass, auto vs manual share, open exceptions by
age and kind, unreconciled amounts per currency, job durations and volumes.

A handful of aggregate queries, cached under ``project:<pid>:analytics``; the
cache entry is dropped whenever an exception changes or a job finishes
(``invalidate_analytics``), so the numbers are never staler than the last write.

Definitions:

- jobs: the project's finished jobs (the latest ``MAX_JOBS``), oldest first;
  ``duration_seconds`` is start to finish (engine and publishing), else the
  engine's own figure; ``current_match_rate`` the job's current state (people's
  decisions applied) for the jobs that count (below), else null.
- Each source record counts once: in the latest succeeded, non-dry-run job that
  reconciled its source (so two jobs on one pair count the later one, and a source
  in two pairs counts in the later pair's job). Those (job, side) are the
  ``counted`` ones; everything below is about their records.
- auto: records the engine matched; manual: records people matched (manual matches
  and accepted suggestions, in the current state); explained: matched or resolved
  with a reason.
- open exceptions: open, assigned, reopened and pending approval; age in whole days
  since ``opened_at``: 0-1, 2-7, 8-30, >30.
- unreconciled: per currency ('' when the record has none), the open exceptions'
  amounts exactly: ``left``, ``right``, ``net`` (left minus right) and ``gross``
  (the sum of their absolute values).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, NamedTuple

from sqlalchemy import func, select

from instrumentation import db_query_timer
from recon.cache_keys import Cache, analytics_key
from recon.db_decimal import EXACT
from recon.db_types import SessionLike, utcnow
from recon.jobs.models import Job, JobStatus
from recon.projects.models import Project
from recon.review.models import (
    UNEXPLAINED_STATUSES,
    ExceptionKind,
    ExceptionStatus,
    ExceptionTally,
    ManualMatch,
    ManualMatchStatus,
)
from recon.review.state import job_state
from recon.storage import Storage

MAX_JOBS = 500
AGE_BUCKETS = (("0-1", 0, 1), ("2-7", 2, 7), ("8-30", 8, 30), (">30", 31, None))
FINISHED = (JobStatus.succeeded, JobStatus.failed, JobStatus.cancelled)
SIDES = ("left", "right")
UNEXPLAINED = {s.value for s in UNEXPLAINED_STATUSES}


def invalidate_analytics(*, cache: Cache | None, project_id: int) -> None:
    """Drop the project's cached analytics (after a job finished)."""
    if cache is not None:
        cache.delete(analytics_key(project_id))


def get_analytics(
    *,
    session: SessionLike,
    storage: Storage,
    project: Project,
    cache: Cache | None = None,
    ttl: float | None = None,
) -> dict[str, Any]:
    """Return the project's analytics (JSON-safe), from the cache when it holds them."""
    project_id = project.id

    def load() -> dict[str, Any]:
        return compute_analytics(
            session=session, storage=storage, project_id=project_id, cache=cache
        )

    if cache is None:
        return load()
    return cache.get_or_set(analytics_key(project_id), load, ttl)


def counted(session: SessionLike, project_id: int) -> dict[tuple[int, str], int]:
    """Return, per (job id, side), the source whose records count in that job: the latest
    succeeded, non-dry-run job that reconciled each source."""
    rows = session.execute(
        select(Job.id, Job.left_source_id, Job.right_source_id)
        .where(
            Job.project_id == project_id,
            Job.status == JobStatus.succeeded,
            Job.dry_run.is_(False),
        )
        .order_by(Job.id)
    ).all()
    latest: dict[int, tuple[int, str]] = {}
    for job_id, left, right in rows:  # oldest first: the last job seen per source wins
        latest[left], latest[right] = (job_id, "left"), (job_id, "right")
    return {where: source for source, where in latest.items()}


def compute_analytics(
    *,
    session: SessionLike,
    storage: Storage,
    project_id: int,
    cache: Cache | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Return the project's analytics computed from the database now."""
    now = now or utcnow()
    chosen = counted(session, project_id)
    states = _states(session, storage, chosen, cache)
    jobs = _jobs(session, project_id, states)
    auto = manual = explained = records = 0
    for job_id, side in chosen:
        by_side = (states.get(job_id) or {}).get("by_side", {}).get(side, {})
        records += by_side.get("records", 0)
        auto += by_side.get("matched", 0) - by_side.get("manual", 0)
        manual += by_side.get("manual", 0)
        explained += by_side.get("explained", 0)
    done = auto + manual
    durations = [j["duration_seconds"] for j in jobs if j["duration_seconds"] is not None]
    tallies = _tallies(session, project_id, _counted_pairs(session, chosen))
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
            "records": records,
            "auto": auto,
            "manual": manual,
            "explained": explained,
            "manual_matches": _manual_matches(session, project_id),
            "auto_share": round(auto / done, 4) if done else None,
            "manual_share": round(manual / done, 4) if done else None,
        },
        "open_exceptions": _open_exceptions(tallies, now),
        "exceptions_by_status": _by_status(tallies),
        "unreconciled": _unreconciled(tallies),
    }


def _states(
    session: SessionLike,
    storage: Storage,
    chosen: dict[tuple[int, str], int],
    cache: Cache | None,
) -> dict[int, dict[str, Any]]:
    out: dict[int, dict[str, Any]] = {}
    for job_id in sorted({job_id for job_id, _ in chosen}):
        job = session.get(Job, job_id)
        state = job_state(session=session, storage=storage, job=job, cache=cache) if job else None
        if state is not None:
            out[job_id] = state
    return out


def _counted_pairs(
    session: SessionLike, chosen: dict[tuple[int, str], int]
) -> list[tuple[str, str]]:
    """The (pair key, side) of the exceptions that count: those of the counted jobs' pairs."""
    ids = sorted({job_id for job_id, _ in chosen})
    if not ids:
        return []
    keys = {
        job_id: f"{left}:{right}"
        for job_id, left, right in session.execute(
            select(Job.id, Job.left_source_id, Job.right_source_id).where(Job.id.in_(ids))
        )
    }
    return sorted({(keys[job_id], side) for job_id, side in chosen})


def _duration(started: datetime | None, finished: datetime | None, summary: dict) -> float | None:
    if started is not None and finished is not None:
        return round((finished - started).total_seconds(), 3)
    value = summary.get("duration_seconds")
    return None if value is None else float(value)


def _jobs(
    session: SessionLike, project_id: int, states: dict[int, dict[str, Any]]
) -> list[dict[str, Any]]:
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
        state = states.get(jid)
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
                "current_match_rate": state["match_rate"] if state else None,
                "explained_rate": state["explained_rate"] if state else None,
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
        for side in SIDES
    )


def _manual_matches(session: SessionLike, project_id: int) -> int:
    with db_query_timer("select", "manual_matches"):
        found = session.scalar(
            select(func.count())
            .select_from(ManualMatch)
            .where(
                ManualMatch.project_id == project_id,
                ManualMatch.status == ManualMatchStatus.active,
            )
        )
    return int(found or 0)


class _Tally(NamedTuple):
    pair_key: str
    side: str
    status: str
    kind: str
    currency: str
    opened_at: datetime
    scale: int
    records: int
    total: str
    gross: str


def _tallies(session: SessionLike, project_id: int, pairs: list[tuple[str, str]]) -> list[_Tally]:
    """The tallies of the exceptions that count (recon.review.tallies), as plain rows."""
    counted = set(pairs)
    t = ExceptionTally
    with db_query_timer("select", "exception_tallies"):
        rows = session.execute(
            select(*(getattr(t, name) for name in _Tally._fields)).where(t.project_id == project_id)
        ).all()
    return [_Tally(*row) for row in rows if (row[0], row[1]) in counted]


def _open_exceptions(tallies: list[_Tally], now: datetime) -> dict[str, Any]:
    by_age = {name: 0 for name, _, _ in AGE_BUCKETS}
    by_kind = {k.value: 0 for k in ExceptionKind}
    for t in tallies:
        if t.status not in UNEXPLAINED:
            continue
        by_kind[t.kind] += t.records
        for name, low, high in AGE_BUCKETS:
            # age >= low <=> opened_at <= now - low days; age <= high <=> opened > now - (high+1)
            if t.opened_at <= now - timedelta(days=low) and (
                high is None or t.opened_at > now - timedelta(days=high + 1)
            ):
                by_age[name] += t.records
    return {"total": sum(by_kind.values()), "by_age": by_age, "by_kind": by_kind}


def _by_status(tallies: list[_Tally]) -> dict[str, int]:
    counts = {s.value: 0 for s in ExceptionStatus}
    for t in tallies:
        counts[t.status] += t.records
    return counts


def _unreconciled(tallies: list[_Tally]) -> list[dict[str, Any]]:
    totals: dict[str, dict[str, Any]] = {}
    for t in tallies:
        if t.status not in UNEXPLAINED:
            continue
        entry = totals.setdefault(
            t.currency,
            {
                "scale": 0,
                "left": Decimal(0),
                "right": Decimal(0),
                "gross": Decimal(0),
                "records": 0,
            },
        )
        entry["scale"] = max(entry["scale"], int(t.scale))
        entry[t.side] = EXACT.add(entry[t.side], Decimal(t.total))
        entry["gross"] = EXACT.add(entry["gross"], Decimal(t.gross))
        entry["records"] += t.records
    out = []
    for ccy in sorted(totals):
        entry = totals[ccy]
        exp = Decimal(1).scaleb(-entry["scale"])

        def text(value: Decimal, exp: Decimal = exp) -> str:
            return format(value.quantize(exp, context=EXACT), "f")

        out.append(
            {
                "currency": ccy,
                "net": text(EXACT.subtract(entry["left"], entry["right"])),
                "gross": text(entry["gross"]),
                "left": text(entry["left"]),
                "right": text(entry["right"]),
                "records": entry["records"],
            }
        )
    return out
