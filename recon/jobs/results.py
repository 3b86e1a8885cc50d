"""Reading a job's results: pages for the API and a streamed CSV export.

Results stay in the job's Parquet file; DuckDB joins them with the source
files when read, so nothing is copied into the database.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any

from recon.duckdb_conn import connect
from recon.engine.results import RESULT_COLUMNS
from recon.errors import Conflict
from recon.jobs.models import Job, JobStatus
from recon.pagination import Page
from recon.sources.models import Source
from recon.storage import Storage

SIDES = ("left", "right")
CANONICAL = ("key", "amount", "date", "currency", "description")
# OWASP CSV injection: a spreadsheet runs cells that start with these.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n")
BATCH = 10_000


def _require_results(job: Job) -> str:
    if job.status != JobStatus.succeeded or not job.result_path:
        raise Conflict(f"Job {job.id} has no results ({job.status.value}).", code="no_results")
    return job.result_path


def _where(status: str | None, side: str | None) -> tuple[str, list[Any]]:
    clauses, params = [], []
    if status:
        clauses.append("r.status = ?")
        params.append(status)
    if side:
        clauses.append("r.side = ?")
        params.append(side)
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


def _joined_sql(
    columns: list[str], extra_left: list[str], extra_right: list[str], where: str
) -> str:
    extras = "".join(
        f', CASE WHEN r.side = \'left\' THEN CAST(l."{c}" AS VARCHAR) END AS "left.{c}"'
        for c in extra_left
    ) + "".join(
        f', CASE WHEN r.side = \'right\' THEN CAST(rt."{c}" AS VARCHAR) END AS "right.{c}"'
        for c in extra_right
    )
    canonical = ", ".join(
        f"CASE WHEN r.side = 'left' THEN CAST(l.{c} AS VARCHAR) "
        f"ELSE CAST(rt.{c} AS VARCHAR) END AS {c}"
        for c in CANONICAL
    )
    selected = ", ".join(f"r.{c}" if c != "pass" else 'r."pass"' for c in columns)
    return (
        f"SELECT {selected}, {canonical}{extras} "  # noqa: S608 - names come from our schema
        "FROM read_parquet(?) r "
        "LEFT JOIN read_parquet(?) l ON r.side = 'left' AND l.row = r.row "
        "LEFT JOIN read_parquet(?) rt ON r.side = 'right' AND rt.row = r.row"
        f"{where} ORDER BY r.side, r.row"
    )


def _paths(storage: Storage, job: Job, left: Source, right: Source) -> list[str]:
    return [
        str(storage.path(_require_results(job))),
        str(storage.path(left.path)),
        str(storage.path(right.path)),
    ]


def get_results(
    *,
    storage: Storage,
    job: Job,
    left: Source,
    right: Source,
    status: str | None = None,
    side: str | None = None,
    page: int = 1,
    per_page: int = 50,
) -> Page[dict[str, Any]]:
    """Return a page of result records with their canonical fields, by side and row."""
    paths = _paths(storage, job, left, right)
    where, params = _where(status, side)
    con = connect()
    try:
        total = con.execute(
            f"SELECT count(*) FROM read_parquet(?) r{where}",  # noqa: S608 - fixed clauses
            [paths[0], *params],
        ).fetchone()
        cursor = con.execute(
            _joined_sql(list(RESULT_COLUMNS), [], [], where) + " LIMIT ? OFFSET ?",
            [*paths, *params, per_page, (page - 1) * per_page],
        )
        names = [d[0] for d in cursor.description]
        items = [_jsonable(dict(zip(names, row, strict=True))) for row in cursor.fetchall()]
    finally:
        con.close()
    return Page(items=items, page=page, per_page=per_page, total=int(total[0]) if total else 0)


def _jsonable(item: dict[str, Any]) -> dict[str, Any]:
    for name in ("confidence", "amount_diff"):
        if item.get(name) is not None:
            item[name] = str(item[name])
    return item


def neutralise(value: Any) -> Any:
    """Return a text cell made safe for spreadsheets; numbers and empty cells as they are."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


NUMERIC = {"row", "match_id", "confidence", "amount_diff", "date_diff_days", "amount"}


def export_csv(
    *,
    storage: Storage,
    job: Job,
    left: Source,
    right: Source,
    status: str | None = None,
) -> Iterator[str]:
    """Yield the CSV export (canonical and original columns) in chunks, streaming from DuckDB.

    Text cells that a spreadsheet would run as a formula are prefixed with a quote;
    amounts and other numbers are written as they are, so ``-1250.00`` stays numeric.
    """
    paths = _paths(storage, job, left, right)
    where, params = _where(status, None)
    sql = _joined_sql(list(RESULT_COLUMNS), list(left.columns), list(right.columns), where)
    con = connect()
    try:
        cursor = con.execute(sql, [*paths, *params])
        names = [d[0] for d in cursor.description]
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow([neutralise(name) for name in names])
        while rows := cursor.fetchmany(BATCH):
            for row in rows:
                writer.writerow(
                    [
                        value if name in NUMERIC else neutralise(value)
                        for name, value in zip(names, row, strict=True)
                    ]
                )
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
        if buffer.getvalue():
            yield buffer.getvalue()
    finally:
        con.close()
