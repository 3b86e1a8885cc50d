"""Turn a finished job's results into exceptions, carrying work over from earlier jobs.

DuckDB joins the results Parquet with the two source Parquet files and hands
back only the records that need a person (``break``, ``unmatched``,
``suggested``), each with its canonical fields and, for breaks and
suggestions, its counterpart (the other side's records of the same
``match_id``). Matched records never reach Python.

Identity is (project, sources pair, side, row), so a re-run on the same pair
meets the exceptions of the previous run:

- resolved or closed: left exactly as they are (a re-run never reopens what
  people resolved, even when the record is still an exception);
- open, assigned or reopened and still an exception: moved to the new job
  with the new kind, counterpart and diff; status, assignee, note and comments
  are kept;
- open, assigned or reopened and now matched: closed with reason
  ``matched_by_job`` (their ``job_id`` stays the job that last reported them);
- new records: inserted ``open``.

Nothing here commits: the caller publishes the job row and the exceptions in
one transaction, and writes one audit event for the job.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, cast

from sqlalchemy import CursorResult, insert, select, update

from instrumentation import db_query_timer
from recon.db_types import SessionLike, utcnow
from recon.duckdb_conn import connect
from recon.jobs.models import Job
from recon.review.models import OPEN_STATUSES, ExceptionKind, ExceptionStatus, ReconException

BATCH = 1000
CLOSED_BY_JOB = "matched_by_job"
KINDS = {
    "break": ExceptionKind.break_,
    "unmatched": ExceptionKind.unmatched,
    "suggested": ExceptionKind.suggested,
}

# One row per exception record; the counterpart list is built in DuckDB too. ``amount`` is
# the text of a DECIMAL at the side's scale, so it always has exactly ``scale`` decimals.
_QUERY = """
WITH res AS (
    SELECT side, "row", status, pass, match_id, confidence, amount_diff, date_diff_days,
           diff_fields
    FROM read_parquet($results)
    WHERE status IN ('break', 'unmatched', 'suggested')
),
src AS (
    SELECT 'left' AS side, CAST("row" AS BIGINT) AS "row", left(CAST("key" AS VARCHAR), 255) AS k,
           CAST(CAST(amount AS DECIMAL(38, {left_scale})) AS VARCHAR) AS amount,
           CAST("date" AS DATE) AS d, left(CAST(currency AS VARCHAR), 8) AS ccy,
           CAST(description AS VARCHAR) AS descr
    FROM read_parquet($left)
    UNION ALL
    SELECT 'right', CAST("row" AS BIGINT), left(CAST("key" AS VARCHAR), 255),
           CAST(CAST(amount AS DECIMAL(38, {right_scale})) AS VARCHAR),
           CAST("date" AS DATE), left(CAST(currency AS VARCHAR), 8),
           CAST(description AS VARCHAR)
    FROM read_parquet($right)
),
rec AS (
    SELECT r.*, s.k, s.amount, s.d, s.ccy, s.descr
    FROM res r JOIN src s ON s.side = r.side AND s."row" = r."row"
),
grouped AS (
    SELECT match_id, side, list({{'side': side, 'row': "row", 'key': k, 'amount': amount,
                                 'date': CAST(d AS VARCHAR), 'currency': ccy}} ORDER BY "row")
               AS records
    FROM rec WHERE match_id IS NOT NULL AND status IN ('break', 'suggested')
    GROUP BY match_id, side
)
SELECT r.side, r."row", r.status, r.pass, r.match_id,
       CAST(CAST(r.confidence AS DECIMAL(6, 2)) AS VARCHAR),
       CAST(r.amount_diff AS VARCHAR), r.date_diff_days, r.diff_fields,
       r.k, r.amount, r.d, r.ccy,
       r.descr, g.records
FROM rec r
LEFT JOIN grouped g ON r.status IN ('break', 'suggested') AND g.match_id = r.match_id
                    AND g.side <> r.side
ORDER BY r.side, r."row"
"""


def pair_key(job: Job) -> str:
    """Return the key of the job's sources pair, the scope in which exceptions carry over."""
    return f"{job.left_source_id}:{job.right_source_id}"


def read_exception_records(
    *, results_path: Path, left_path: Path, right_path: Path, scale_left: int, scale_right: int
) -> list[tuple[Any, ...]]:
    """Return the break, unmatched and suggested records with their fields, by side and row."""
    query = _QUERY.format(left_scale=int(scale_left), right_scale=int(scale_right))
    con = connect()
    try:
        return con.execute(
            query,
            {"results": str(results_path), "left": str(left_path), "right": str(right_path)},
        ).fetchall()
    finally:
        con.close()


def _values(row: tuple[Any, ...], scales: dict[str, int]) -> dict[str, Any]:
    """The job-dependent columns of one exception record."""
    (
        side,
        row_no,
        status,
        pass_name,
        match_id,
        confidence,
        amount_diff,
        days,
        diff_fields,
        key,
        amount,
        day,
        currency,
        description,
        counterpart,
    ) = row
    return {
        "side": side,
        "row": int(row_no),
        "kind": KINDS[status],
        "match_id": None if match_id is None else int(match_id),
        "pass_name": pass_name,
        "confidence": confidence,
        "key": key,
        "amount": amount,
        "scale": scales[side],
        "currency": currency or None,
        "date": day,
        "description": description,
        "counterpart": counterpart if status != "unmatched" else None,
        "diff": {
            "amount_diff": amount_diff,
            "date_diff_days": None if days is None else int(days),
            "fields": [f for f in (diff_fields or "").split(",") if f],
        },
    }


def _chunks(items: Sequence[Any], size: int = BATCH) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def publish_exceptions(
    *,
    session: SessionLike,
    job: Job,
    results_path: Path,
    left_path: Path,
    right_path: Path,
    scale_left: int,
    scale_right: int,
    now: datetime | None = None,
) -> dict[str, int]:
    """Add the job's exceptions to the session (no commit); return the counts
    ``opened``, ``updated``, ``kept_resolved`` and ``closed``."""
    now = now or utcnow()
    key = pair_key(job)
    records = read_exception_records(
        results_path=results_path,
        left_path=left_path,
        right_path=right_path,
        scale_left=scale_left,
        scale_right=scale_right,
    )
    scales = {"left": int(scale_left), "right": int(scale_right)}
    with db_query_timer("select", "exceptions"):
        existing = {
            (side, int(row)): (eid, status)
            for eid, side, row, status in session.execute(
                select(
                    ReconException.id,
                    ReconException.side,
                    ReconException.row,
                    ReconException.status,
                ).where(ReconException.project_id == job.project_id, ReconException.pair_key == key)
            )
        }
    inserts: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    kept = 0
    for row in records:
        values = _values(row, scales)
        found = existing.get((values["side"], values["row"]))
        if found is None:
            inserts.append(
                {
                    **values,
                    "project_id": job.project_id,
                    "job_id": job.id,
                    "pair_key": key,
                    "status": ExceptionStatus.open,
                    "opened_at": now,
                    "updated_at": now,
                }
            )
        elif ExceptionStatus(found[1]).is_open:
            updates.append({**values, "id": found[0], "job_id": job.id, "updated_at": now})
        else:
            kept += 1
    with db_query_timer("insert", "exceptions"):
        for batch in _chunks(inserts):
            session.execute(
                insert(ReconException).execution_options(render_nulls=True), list(batch)
            )
    with db_query_timer("update", "exceptions"):
        for batch in _chunks(updates):
            session.execute(update(ReconException), list(batch))
        # Whatever is still open on this pair and was not reported again is now matched.
        result = session.execute(
            update(ReconException)
            .where(
                ReconException.project_id == job.project_id,
                ReconException.pair_key == key,
                ReconException.status.in_(OPEN_STATUSES),
                ReconException.job_id != job.id,
            )
            .values(
                status=ExceptionStatus.closed,
                reason_code=CLOSED_BY_JOB,
                resolved_at=now,
                updated_at=now,
            )
            .execution_options(synchronize_session=False)
        )
        closed = cast("CursorResult[Any]", result).rowcount
    return {
        "opened": len(inserts),
        "updated": len(updates),
        "kept_resolved": kept,
        "closed": int(closed or 0),
    }
