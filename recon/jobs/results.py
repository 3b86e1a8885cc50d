"""Reading a job's results: pages for the API and a streamed CSV export.

Results stay in the job's Parquet file; DuckDB joins them with the source
files when read, so nothing is copied into the database.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
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


@dataclass(frozen=True)
class ResultFilter:
    """Which result records to read; amounts compare by size (the sign is ignored) and ``q``
    looks for text in the key or the description, ignoring case."""

    status: str | None = None
    side: str | None = None
    pass_name: str | None = None
    min_amount: Decimal | None = None
    max_amount: Decimal | None = None
    q: str | None = None
    match_id: int | None = None

    @property
    def reads_sources(self) -> bool:
        return self.min_amount is not None or self.max_amount is not None or bool(self.q)


def _field(name: str) -> str:
    return f"(CASE WHEN r.side = 'left' THEN l.{name} ELSE rt.{name} END)"


def _where(filters: ResultFilter) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    for clause, value in (
        ("r.status = ?", filters.status),
        ("r.side = ?", filters.side),
        ('r."pass" = ?', filters.pass_name),
        ("r.match_id = ?", filters.match_id),
        (f"abs({_field('amount')}) >= CAST(? AS DECIMAL(38, 10))", filters.min_amount),
        (f"abs({_field('amount')}) <= CAST(? AS DECIMAL(38, 10))", filters.max_amount),
    ):
        if value is not None:
            clauses.append(clause)
            params.append(str(value) if isinstance(value, Decimal) else value)
    if filters.q:
        clauses.append(
            f"(contains(lower(CAST({_field('key')} AS VARCHAR)), lower(?)) "
            f"OR contains(lower(CAST({_field('description')} AS VARCHAR)), lower(?)))"
        )
        params += [filters.q, filters.q]
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


FROM_SQL = (
    " FROM read_parquet(?) r "
    "LEFT JOIN read_parquet(?) l ON r.side = 'left' AND l.row = r.row "
    "LEFT JOIN read_parquet(?) rt ON r.side = 'right' AND rt.row = r.row"
)


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
        f"SELECT {selected}, {canonical}{extras}"  # noqa: S608 - names come from our schema
        f"{FROM_SQL}{where} ORDER BY r.side, r.row"
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
    filters: ResultFilter | None = None,
    page: int = 1,
    per_page: int = 50,
) -> Page[dict[str, Any]]:
    """Return a page of result records with their canonical fields, by side and row."""
    filters = filters or ResultFilter()
    paths = _paths(storage, job, left, right)
    where, params = _where(filters)
    # The count reads the sources only when a filter needs their fields.
    count_sql, count_paths = (
        (f"SELECT count(*){FROM_SQL}{where}", paths)  # noqa: S608 - fixed clauses
        if filters.reads_sources
        else (f"SELECT count(*) FROM read_parquet(?) r{where}", paths[:1])  # noqa: S608
    )
    con = connect()
    try:
        total = con.execute(count_sql, [*count_paths, *params]).fetchone()
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
    filters: ResultFilter | None = None,
) -> Iterator[str]:
    """Yield the CSV export (canonical and original columns) in chunks, streaming from DuckDB.

    Text cells that a spreadsheet would run as a formula are prefixed with a quote;
    amounts and other numbers are written as they are, so ``-1250.00`` stays numeric.
    """
    paths = _paths(storage, job, left, right)
    where, params = _where(filters or ResultFilter())
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


def differing_fields(record: dict[str, Any], others: list[dict[str, Any]]) -> set[str]:
    """Return the canonical fields in which ``record`` differs from any of ``others``, compared
    as the engine normalises them (keys trimmed and case-folded, amounts as numbers)."""
    out: set[str] = set()
    for other in others:
        for name in CANONICAL:
            if (
                name in record
                and name in other
                and _norm(name, record[name]) != _norm(name, other[name])
            ):
                out.add(name)
    return out


def _norm(name: str, value: Any) -> Any:
    if value is None or value == "":
        return None
    if name == "amount":
        try:
            return Decimal(str(value))
        except InvalidOperation:
            return str(value)
    if name == "date":
        return value.isoformat() if isinstance(value, date) else str(value)[:10]
    if name == "currency":
        return str(value).strip().upper()
    return " ".join(str(value).split()).casefold()
