"""Reading a job's results with people's decisions applied: pages, counts and rows to export.

The results Parquet is the engine's answer and never changes. What people decided
arrives as *overrides*, a small Arrow table (``OVERRIDES``, built by
``recon.review.state`` from the database), and DuckDB joins the two when read, so
the current state is derived, never stored twice. An override applies to a record
the engine did not match (what the engine matched stays its answer); one that names
a ``grp`` (the records of one manual match) applies only when every record of the
group is unmatched by the engine in this job. ``view=engine`` is the same read with
no overrides.

Current columns of each record: ``status``, ``pass`` ('manual' for manual matches),
``match_id``, ``decided_by`` ('engine' | 'person'), ``explained`` (matched, or its
exception resolved with a reason code and not awaiting approval), ``pending``
(awaiting approval), ``reason_code``, ``engine_status``; then the engine's
``confidence``, ``amount_diff``, ``date_diff_days``, ``duplicate_key``,
``diff_fields``, and the record's canonical fields from its source.

Pages are by (side, row): ``after`` is the opaque cursor of the last record of the
previous page (keyset paging: any depth costs the same); ``page`` still works.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from recon.duckdb_conn import cursor
from recon.engine.results import RESULT_COLUMNS
from recon.errors import Conflict, ValidationError
from recon.jobs.models import Job, JobStatus
from recon.pagination import Page
from recon.sources.models import Source
from recon.storage import Storage

SIDES = ("left", "right")
EXPORT_CHUNK = 100_000  # row numbers per export query
EXPORT_BATCH = 5_000  # records fetched from DuckDB at a time
WINDOW = 20_000  # row numbers a page reads first (doubling until the page is full)
READ_MEMORY_LIMIT = "512MB"  # of the DuckDB database a process's readers share
CANONICAL = ("key", "amount", "date", "currency", "description")
VIEWS = ("current", "engine")
OVERRIDES = pa.schema(
    [
        ("side", pa.string()),
        ("row", pa.int64()),
        ("status", pa.string()),  # NULL: the engine's status stands
        ("pass", pa.string()),
        ("match_id", pa.int64()),
        ("grp", pa.int64()),  # a manual match: applies only if all its records are unmatched
        ("explained", pa.bool_()),
        ("pending", pa.bool_()),
        ("reason_code", pa.string()),
    ]
)
# What applies to this job's records (resolve_overrides): the decisions on records the
# engine did not match, manual matches only when all their records are unmatched.
APPLIED = pa.schema(
    [*(f for f in OVERRIDES if f.name != "grp"), pa.field("engine_status", pa.string())]
)
NO_OVERRIDES = APPLIED.empty_table()
CURRENT_COLUMNS = (
    "side",
    "row",
    "status",
    "pass",
    "match_id",
    "decided_by",
    "explained",
    "pending",
    "reason_code",
    "engine_status",
    "confidence",
    "amount_diff",
    "date_diff_days",
    "duplicate_key",
    "diff_fields",
)
ENGINE_ONLY = set(RESULT_COLUMNS) - set(CURRENT_COLUMNS)
assert not ENGINE_ONLY, ENGINE_ONLY  # every engine column is shown


@dataclass(frozen=True)
class Filters:
    """What a results page, count or export is restricted to (all optional)."""

    status: str | None = None
    side: str | None = None
    pass_name: str | None = None
    match_id: int | None = None
    key: str | None = None
    q: str | None = None
    amount_min: Any = None
    amount_max: Any = None
    rows: tuple[int, int] | None = None  # [first, last) row numbers (exports read in ranges)
    grouped: bool = False  # only records of a match or break (match_id set)

    @property
    def needs_fields(self) -> bool:
        return any(v is not None for v in (self.key, self.q, self.amount_min, self.amount_max))


def require_results(job: Job) -> str:
    """Return the job's results path; Conflict when it has none."""
    if job.status != JobStatus.succeeded or not job.result_path:
        raise Conflict(f"Job {job.id} has no results ({job.status.value}).", code="no_results")
    return job.result_path


def encode_cursor(side: str, row: int) -> str:
    """Return the opaque cursor of a record (side, row)."""
    return base64.urlsafe_b64encode(f"{side}:{row}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[str, int]:
    """Return (side, row) of a cursor; ValidationError when it is not one of ours."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        side, _, row = text.partition(":")
        if side in SIDES and row.isdigit():
            return side, int(row)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        pass
    raise ValidationError(
        "after is not a cursor of this list.",
        errors=[{"field": "after", "message": "Pass back the next value of a page."}],
    )


_CURRENT_COLUMNS = """
    r.side, r."row",
    coalesce(oe.status, CAST(r.status AS VARCHAR)) AS status,
    CASE WHEN oe.status IS NOT NULL THEN oe.pass ELSE CAST(r.pass AS VARCHAR) END AS pass,
    CASE WHEN oe.status IS NOT NULL THEN oe.match_id ELSE r.match_id END AS match_id,
    CASE WHEN oe.status IS NOT NULL THEN 'person' ELSE 'engine' END AS decided_by,
    (r.status = 'matched' OR coalesce(oe.explained, false)) AS explained,
    coalesce(oe.pending, false) AS pending,
    oe.reason_code,
    CAST(r.status AS VARCHAR) AS engine_status,
    r.confidence, r.amount_diff, r.date_diff_days, r.duplicate_key, r.diff_fields
"""
_JOIN = 'LEFT JOIN oe ON oe.side = r.side AND oe."row" = r."row"'


def _current_sql(status: str | None) -> tuple[str, list[Any]]:
    """The records with the applied overrides ``oe`` (reads $results), and its parameters.

    With a status, the records whose engine status is that one (a filter the Parquet scan
    applies) that no decision changed, and the decided records that now have it.
    """
    if status is None:
        return f"SELECT {_CURRENT_COLUMNS} FROM read_parquet($results) r {_JOIN}", []  # noqa: S608
    return (
        f"""SELECT {_CURRENT_COLUMNS} FROM read_parquet($results) r {_JOIN}
            WHERE r.status = ? AND (oe.status IS NULL OR oe.status = ?)
            UNION ALL
            SELECT {_CURRENT_COLUMNS} FROM read_parquet($results) r
            JOIN oe ON oe.side = r.side AND oe."row" = r."row"
            WHERE oe.status = ? AND r.status <> ?""",  # noqa: S608 - our own SQL
        [status] * 4,
    )


_RESOLVE_SQL = """
    WITH oo AS (
        SELECT o.*, CAST(r.status AS VARCHAR) AS engine_status
        FROM o JOIN read_parquet($results) r ON r.side = o.side AND r."row" = o."row"
    ),
    g AS (
        SELECT grp, bool_and(engine_status <> 'matched') AS ok
        FROM oo WHERE grp IS NOT NULL GROUP BY grp
    )
    SELECT oo.side, oo."row", oo.status, oo.pass, oo.match_id, oo.explained, oo.pending,
           oo.reason_code, oo.engine_status
    FROM oo LEFT JOIN g ON g.grp = oo.grp
    WHERE oo.engine_status <> 'matched' AND (oo.grp IS NULL OR g.ok)
"""


def _where(filters: Filters, after: tuple[str, int] | None) -> tuple[str, list[Any]]:
    clauses, params = [], []
    for column, value in (
        ("c.side", filters.side),
        ("c.pass", filters.pass_name),
        ("c.match_id", filters.match_id),
    ):
        if value is not None:
            clauses.append(f"{column} = ?")
            params.append(value)
    if filters.key is not None:
        clauses.append("contains(lower(c.f_key), lower(?))")
        params.append(filters.key)
    if filters.q is not None:
        clauses.append(
            "(contains(lower(c.f_key), lower(?)) OR contains(lower(c.f_description), lower(?)))"
        )
        params.extend([filters.q, filters.q])
    # Amounts compare by size: a debit of -250.00 is found by 200..300 like a credit.
    if filters.amount_min is not None:
        clauses.append("abs(c.f_amount) >= CAST(? AS DECIMAL(38, 18))")
        params.append(str(filters.amount_min))
    if filters.amount_max is not None:
        clauses.append("abs(c.f_amount) <= CAST(? AS DECIMAL(38, 18))")
        params.append(str(filters.amount_max))
    if filters.grouped:
        clauses.append("c.match_id IS NOT NULL")
    if filters.rows is not None:
        clauses.append('c."row" >= ? AND c."row" < ?')
        params.extend(filters.rows)
    if after is not None:
        clauses.append('(c.side, c."row") > (?, ?)')
        params.extend(after)
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


_FILTER_FIELDS = (
    "CAST(CASE WHEN c.side = 'left' THEN fl.key ELSE fr.key END AS VARCHAR) AS f_key, "
    "CAST(CASE WHEN c.side = 'left' THEN fl.description ELSE fr.description END AS VARCHAR) "
    "AS f_description, CASE WHEN c.side = 'left' THEN CAST(fl.amount AS DECIMAL(38, 18)) "
    "ELSE CAST(fr.amount AS DECIMAL(38, 18)) END AS f_amount"
)


def _fields_sql(alias: str, source: str, extra: list[str] | None = None) -> str:
    """The canonical (and, for exports, original) fields of both sides' records."""
    # Amounts as text at their source's own scale ("1234.50"), exactly.
    canonical = ", ".join(
        f"CASE WHEN {alias}.side = 'left' THEN CAST(fl.{c} AS VARCHAR) "
        f"ELSE CAST(fr.{c} AS VARCHAR) END AS {c}"
        for c in CANONICAL
    )
    return (
        f"{canonical}{''.join(extra or [])} FROM {source} "
        f"LEFT JOIN read_parquet($left) fl ON {alias}.side = 'left' "
        f'AND fl."row" = {alias}."row" '
        f"LEFT JOIN read_parquet($right) fr ON {alias}.side = 'right' "
        f'AND fr."row" = {alias}."row"'
    )


class Reader:
    """One DuckDB connection over a job's results, its sources and the overrides."""

    def __init__(
        self, *, storage: Storage, job: Job, left: Source, right: Source, overrides: pa.Table
    ) -> None:
        self.params = {
            "results": str(storage.path(require_results(job))),
            "left": str(storage.path(left.path)),
            "right": str(storage.path(right.path)),
        }
        self.left, self.right = left, right
        self.overrides = overrides
        self.summary = job.summary or {}
        # Bounded like a job's engine: a large read spills to the data directory's tmp.
        self.tmp_dir = storage.tmp_dir
        self.con: duckdb.DuckDBPyConnection = cursor(
            memory_limit=READ_MEMORY_LIMIT, temp_directory=str(storage.tmp_dir)
        )
        self.con.register("oe", overrides)
        self._bounds: dict[str, tuple[int, int]] | None = None
        self._names: list[str] = list(CURRENT_COLUMNS)

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> Reader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _filtered(self, filters: Filters, after: tuple[str, int] | None) -> tuple[str, list]:
        """SQL of the current records matching ``filters`` (alias-free columns), and its
        parameters."""
        current, params = _current_sql(filters.status)
        where, more = _where(filters, after)
        params = [*params, *more]
        if not filters.needs_fields:
            return f"SELECT c.* FROM ({current}) c{where}", params  # noqa: S608
        # Filters on the records' own fields join the sources before filtering.
        with_fields = (
            f"SELECT c.*, {_FILTER_FIELDS} FROM ({current}) c "  # noqa: S608
            'LEFT JOIN read_parquet($left) fl ON c.side = \'left\' AND fl."row" = c."row" '
            'LEFT JOIN read_parquet($right) fr ON c.side = \'right\' AND fr."row" = c."row"'
        )
        return (
            "SELECT c.* EXCLUDE (f_key, f_description, f_amount) "  # noqa: S608 - our own SQL
            f"FROM ({with_fields}) c{where}",
            params,
        )

    def count(self, filters: Filters) -> int:
        """Return how many records match ``filters``: from the engine's summary and the
        decisions when only status and side are filtered, else counted."""
        if replace(filters, status=None, side=None) == Filters() and self.summary:
            return self._derived_count(filters.status, filters.side)
        sql, params = self._filtered(filters, None)
        found = self._execute(f"SELECT count(*) FROM ({sql}) x", params).fetchone()  # noqa: S608
        return int(found[0]) if found else 0

    def _derived_count(self, status: str | None, side: str | None) -> int:
        total = 0
        for name in SIDES:
            if side not in (None, name):
                continue
            by_status = (self.summary.get(name) or {}).get("by_status") or {}
            if status is None:
                total += int((self.summary.get(name) or {}).get("rows", 0))
                continue
            total += int((by_status.get(status) or {}).get("rows", 0))
        if status is None or not len(self.overrides):
            return total
        for o_side, o_status, engine in zip(
            self.overrides["side"].to_pylist(),
            self.overrides["status"].to_pylist(),
            self.overrides["engine_status"].to_pylist(),
            strict=True,
        ):
            if side not in (None, o_side) or o_status is None:
                continue
            total += (o_status == status) - (engine == status)
        return total

    def _inline(self, sql: str) -> str:
        # Named paths and positional filter values can't mix: the paths go in as literals.
        for name, value in self.params.items():
            sql = sql.replace(f"${name}", "'" + value.replace("'", "''") + "'")
        return sql

    def _execute(self, sql: str, params: list[Any]) -> duckdb.DuckDBPyConnection:
        return self.con.execute(self._inline(sql), params)

    def bounds(self) -> dict[str, tuple[int, int]]:
        """Return the first and last row number of each side in the results."""
        if self._bounds is None:
            rows = self._execute(
                'SELECT side, min("row"), max("row") FROM read_parquet($results) GROUP BY side', []
            ).fetchall()
            self._bounds = {side: (int(low), int(high)) for side, low, high in rows}
        return self._bounds

    def _keys(
        self, filters: Filters, after: tuple[str, int] | None, limit: int
    ) -> list[tuple[Any, ...]]:
        """The current records after the cursor, a window of row numbers at a time.

        The results are stored in (side, row) order with row-group statistics, so a
        window reads only its own row groups; it doubles until the page is full, and any
        depth of the file costs about the same.
        """
        found: list[tuple[Any, ...]] = []
        names: list[str] = []
        sides = [side for side in SIDES if filters.side in (None, side)]
        start_side, start_row = after if after is not None else (sides[0], None)
        width = max(WINDOW, limit * 64)
        for side in sides:
            if side < start_side or side not in self.bounds():
                continue
            low, high = self.bounds()[side]
            first = start_row + 1 if side == start_side and start_row is not None else low
            while first <= high and len(found) < limit:
                window = replace(filters, side=side, rows=(first, first + width))
                sql, params = self._filtered(window, None)
                cursor = self._execute(
                    f'{sql} ORDER BY c."row" LIMIT ?',  # noqa: S608 - our own SQL
                    [*params, limit - len(found)],
                )
                names = [d[0] for d in cursor.description]
                found.extend(cursor.fetchall())
                first, width = first + width, width * 2
            if len(found) >= limit:
                break
        self._names = names or self._names
        return found

    def _with_fields(self, keys: list[tuple[Any, ...]], names: list[str]) -> list[dict[str, Any]]:
        """The records with their canonical fields, read by row-number range per side."""
        items = [dict(zip(names, key, strict=True)) for key in keys]
        for side, path in (("left", "$left"), ("right", "$right")):
            rows = [item["row"] for item in items if item["side"] == side]
            if not rows:
                continue
            columns = ", ".join(f"CAST({c} AS VARCHAR) AS {c}" for c in CANONICAL)
            fields = {
                int(row[0]): row[1:]
                for row in self._execute(
                    f'SELECT "row", {columns} FROM read_parquet({path}) '  # noqa: S608
                    'WHERE "row" BETWEEN ? AND ? AND "row" IN (SELECT unnest(?))',
                    [min(rows), max(rows), rows],
                ).fetchall()
            }
            for item in items:
                if item["side"] == side:
                    item.update(
                        zip(CANONICAL, fields.get(int(item["row"]), (None,) * 5), strict=True)
                    )
        return [_jsonable(item) for item in items]

    def page(
        self, filters: Filters, *, after: tuple[str, int] | None, offset: int, limit: int
    ) -> list[dict[str, Any]]:
        """Return up to ``limit`` records after the cursor (or ``offset``), with their fields."""
        if after is not None or offset == 0:
            keys = self._keys(filters, after, limit)
            return self._with_fields(keys, self._names)
        # A numbered page past the first: the records before it have to be counted.
        sql, params = self._filtered(filters, None)
        cursor = self._execute(
            f'{sql} ORDER BY c.side, c."row" LIMIT ? OFFSET ?',  # noqa: S608 - our own SQL
            [*params, limit, offset],
        )
        names = [d[0] for d in cursor.description]
        return self._with_fields(cursor.fetchall(), names)

    def counts(self) -> dict[str, dict[str, int]]:
        """Return records per current status and side, and the state's figures."""
        current, params = _current_sql(None)
        sql = f"""SELECT side, status, decided_by, explained, pending, count(*)
                  FROM ({current}) c GROUP BY ALL"""  # noqa: S608
        out: dict[str, dict[str, int]] = {s: {} for s in SIDES}
        for side, status, decided_by, explained, pending, n in self._execute(
            sql, params
        ).fetchall():
            bucket = out[side]
            for key in (
                f"status:{status}",
                f"decided_by:{decided_by}:{status}",
                f"explained:{bool(explained)}",
                f"pending:{bool(pending)}",
            ):
                bucket[key] = bucket.get(key, 0) + int(n)
        return out

    def _side_fields(self, side: str, original: bool) -> str:
        """The canonical fields (and the sources' own columns) of one side's records, as
        columns of its source ``f``; the other side's own columns NULL (one header for both).
        """
        columns = [f"CAST(f.{c} AS VARCHAR) AS {c}" for c in CANONICAL]
        if original:
            for name, source in (("left", self.left), ("right", self.right)):
                for c in source.columns:
                    quoted = c.replace('"', '""')
                    value = f'CAST(f."{quoted}" AS VARCHAR)' if name == side else "NULL"
                    columns.append(f'{value} AS "{name}.{quoted}"')
        return ", ".join(columns)

    def csv(
        self, batches: Iterator[tuple[str, list[Any]]], numeric: frozenset[str]
    ) -> Iterator[bytes]:
        """Yield the CSV of each query of ``batches`` (SQL and parameters), written by DuckDB.

        Formula-safe (OWASP CSV injection): a text cell a spreadsheet would run (it starts
        with =, +, -, @, tab, CR or LF) gets a leading ``'``; the ``numeric`` columns are
        left as they are. Each query goes through a small file in the data directory's tmp.
        """
        header = True
        for sql, params in batches:
            names = [
                d[0]
                for d in self._execute(f"SELECT * FROM ({sql}) q LIMIT 0", params).description  # noqa: S608
            ]
            columns = ", ".join(
                f'q."{n}"' if n in numeric else _neutralised(f'q."{n}"') + f' AS "{n}"'
                for n in (name.replace('"', '""') for name in names)
            )
            path = Path(self.tmp_dir) / f"export-{uuid.uuid4().hex}.csv"
            try:
                self._execute(
                    f"COPY (SELECT {columns} FROM ({sql}) q) TO '{path}' "  # noqa: S608
                    f"(FORMAT csv, HEADER {str(header).lower()})",
                    params,
                )
                header = False
                with path.open("rb") as handle:
                    while chunk := handle.read(1 << 20):
                        yield chunk
            finally:
                path.unlink(missing_ok=True)

    def records_sql(
        self, filters: Filters, *, original: bool = True, chunk: int = EXPORT_CHUNK
    ) -> Iterator[tuple[str, list[Any]]]:
        """Yield the queries (SQL, parameters) of every record matching ``filters``, a range
        of ``chunk`` row numbers of one side at a time, in (side, row) order."""
        for side in (filters.side,) if filters.side else SIDES:
            if side not in self.bounds():
                continue
            low, high = self.bounds()[side]
            fields = self._side_fields(side, original)
            for start in range(low, high + 1, chunk):
                span = replace(filters, side=side, rows=(start, start + chunk))
                sql, params = self._filtered(span, None)
                yield (
                    f"WITH c AS ({sql}), "  # noqa: S608 - our own SQL
                    f'f AS (SELECT * FROM read_parquet(${side}) WHERE "row" >= ? AND "row" < ?) '
                    f'SELECT c.*, {fields} FROM c LEFT JOIN f ON f."row" = c."row" '
                    'ORDER BY c."row"',
                    [*params, start, start + chunk],
                )

    def pairs_sql(self, filters: Filters) -> tuple[str, list[Any]]:
        """The query (SQL, parameters) of one row per match, suggestion or break: both sides'
        records side by side (keys joined with "; ", amounts summed exactly, the difference
        left minus right), by match."""
        sql, params = self._filtered(replace(filters, grouped=True), None)
        fields = _fields_sql("p", "page p")
        scale = max(int(self.left.amount_scale), int(self.right.amount_scale))

        def total(side: str) -> str:
            return (
                f"coalesce(sum(CAST(amount AS DECIMAL(38, {scale}))) "
                f"FILTER (WHERE side = '{side}'), 0)"
            )

        return (
            f"""
            WITH page AS ({sql}),
            f AS (SELECT p.*, {fields})
            SELECT match_id, status, pass, decided_by,
                   count(*) FILTER (WHERE side = 'left') AS left_records,
                   string_agg(key, '; ' ORDER BY "row") FILTER (WHERE side = 'left') AS left_keys,
                   CAST({total("left")} AS VARCHAR) AS left_amount,
                   count(*) FILTER (WHERE side = 'right') AS right_records,
                   string_agg(key, '; ' ORDER BY "row") FILTER (WHERE side = 'right')
                       AS right_keys,
                   CAST({total("right")} AS VARCHAR) AS right_amount,
                   CAST(CAST({total("left")} - {total("right")} AS DECIMAL(38, {scale}))
                        AS VARCHAR) AS difference,
                   min("date") AS first_date, max("date") AS last_date,
                   string_agg(DISTINCT currency, '; ') AS currency,
                   max(diff_fields) AS diff_fields
            FROM f GROUP BY match_id, status, pass, decided_by
            ORDER BY match_id, status, pass""",  # noqa: S608 - our own SQL
            params,
        )

    def fetch(
        self, queries: Iterator[tuple[str, list[Any]]]
    ) -> Iterator[tuple[list[str], list[tuple[Any, ...]]]]:
        """Yield (column names, rows) of each query, a batch at a time."""
        for sql, params in queries:
            cursor = self._execute(sql, params)
            names = [d[0] for d in cursor.description]
            while batch := cursor.fetchmany(EXPORT_BATCH):
                yield names, batch


FORMULA = r"'^[=+\-@\t\r\n]'"  # cells a spreadsheet runs as a formula (OWASP), as SQL
QUOTE = "''''"  # the SQL literal of one single quote


def _neutralised(column: str) -> str:
    text = f"CAST({column} AS VARCHAR)"
    return f"CASE WHEN regexp_matches({text}, {FORMULA}) THEN {QUOTE} || {text} ELSE {text} END"


def resolve_overrides(
    *, storage: Storage, job: Job, left: Source, right: Source, overrides: pa.Table
) -> pa.Table:
    """Return the overrides (OVERRIDES) that apply to the job's records (APPLIED)."""
    with Reader(storage=storage, job=job, left=left, right=right, overrides=NO_OVERRIDES) as r:
        r.con.register("o", overrides)
        table: pa.Table = r.con.sql(r._inline(_RESOLVE_SQL)).to_arrow_table()
        return table.cast(APPLIED)


def _jsonable(item: dict[str, Any]) -> dict[str, Any]:
    for name in ("confidence", "amount_diff"):
        if item.get(name) is not None:
            item[name] = str(item[name])
    return item


def get_results(
    *,
    storage: Storage,
    job: Job,
    left: Source,
    right: Source,
    overrides: pa.Table = NO_OVERRIDES,
    filters: Filters | None = None,
    page: int = 1,
    per_page: int = 50,
    after: str | None = None,
) -> Page[dict[str, Any]]:
    """Return a page of result records (current state unless ``overrides`` is empty) with
    their canonical fields, by side and row; ``next`` is the cursor of the next page."""
    cursor = decode_cursor(after) if after else None
    with Reader(storage=storage, job=job, left=left, right=right, overrides=overrides) as reader:
        filters = filters or Filters()
        items = reader.page(filters, after=cursor, offset=(page - 1) * per_page, limit=per_page)
        total = reader.count(filters)
    last = items[-1] if len(items) == per_page else None
    return Page(
        items=items,
        page=page,
        per_page=per_page,
        total=total,
        next=encode_cursor(last["side"], int(last["row"])) if last else None,
    )


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
