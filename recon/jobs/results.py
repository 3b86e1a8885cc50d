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

import os
from dataclasses import replace
from typing import Any, ClassVar, Self

import duckdb
import pyarrow as pa

from recon.duckdb_conn import cursor
from recon.errors import Conflict
from recon.jobs.models import Job, JobStatus
from recon.jobs.results_sql import (
    APPLIED,
    CANONICAL,
    CURRENT_COLUMNS,
    NO_OVERRIDES,
    RESOLVE_SQL,
    SEARCH_SQL,
    SIDES,
    Filters,
    current_sql,
    decode_cursor,
    encode_cursor,
    fields_where,
    search_where,
    where_sql,
)
from recon.pagination import Page
from recon.sources.models import Source
from recon.storage import Storage

WINDOW = 20_000  # row numbers a page reads first (doubling until the page is full)
READ_MEMORY_LIMIT = "512MB"  # of the DuckDB database a process's readers share


def require_results(job: Job) -> str:
    """Return the job's results path; Conflict when it has none."""
    if job.status != JobStatus.succeeded or not job.result_path:
        raise Conflict(f"Job {job.id} has no results ({job.status.value}).", code="no_results")
    return job.result_path


class Reader:
    """One DuckDB connection over a job's results, its sources and the overrides."""

    # More settings of the shared database this reader's cursor is on (its own database
    # when they differ from the pages' readers).
    SETTINGS: ClassVar[dict[str, Any]] = {}

    def __init__(
        self, *, storage: Storage, job: Job, left: Source, right: Source, overrides: pa.Table
    ) -> None:
        self.params = {
            "results": str(storage.path(require_results(job))),
            "left": str(storage.path(left.path)),
            "right": str(storage.path(right.path)),
        }
        self.left, self.right = left, right
        self.storage = storage
        self.overrides = overrides
        self.summary = job.summary or {}
        # Bounded like a job's engine: a large read spills to the data directory's tmp.
        self.tmp_dir = storage.tmp_dir
        self.con: duckdb.DuckDBPyConnection = cursor(
            memory_limit=READ_MEMORY_LIMIT, temp_directory=str(storage.tmp_dir), **self.SETTINGS
        )
        self.con.register("oe", overrides)
        self._bounds: dict[str, tuple[int, int]] | None = None
        self._hit_views: dict[tuple[Any, ...], str] = {}
        self._names: list[str] = list(CURRENT_COLUMNS)

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _filtered(self, filters: Filters, after: tuple[str, int] | None) -> tuple[str, list]:
        """SQL of the current records matching ``filters`` (alias-free columns), and its
        parameters."""
        current, params = current_sql(filters.status)
        where, more = where_sql(filters, after)
        params = [*params, *more]
        if not filters.needs_fields:
            return f"SELECT c.* FROM ({current}) c{where}", params  # noqa: S608
        # Filters on the records' own fields: the sources are read for them once.
        hits = self._hits(filters)
        return (
            f"SELECT c.* FROM ({current}) c "  # noqa: S608 - our own SQL
            f'SEMI JOIN {hits} h ON h.side = c.side AND h."row" = c."row"{where}',
            params,
        )

    def _hits(self, filters: Filters) -> str:
        """The name of a view of the (side, row) of the records whose own fields match the
        filters' key, text and amount bounds, read once per reader (a page, its count and
        an export's row spans share it): from the sources' search files when only text is
        filtered, else from the sources."""
        wanted = (filters.side, filters.key, filters.q, filters.amount_min, filters.amount_max)
        if wanted not in self._hit_views:
            sides = [side for side in SIDES if filters.side in (None, side)]
            searched = search_where(filters)
            condition, params = searched or fields_where(filters)
            files = [f"'{self._search_file(s)}'" if searched else f"${s}" for s in sides]
            sql = " UNION ALL ".join(
                f"SELECT '{side}' AS side, \"row\" FROM read_parquet({file}) "  # noqa: S608
                f"WHERE {condition}"
                for side, file in zip(sides, files, strict=True)
            )
            table = self.con.sql(self._inline(sql), params=params * len(sides)).to_arrow_table()
            name = f"hits_{len(self._hit_views)}"
            self.con.register(name, table)
            self._hit_views[wanted] = name
        return self._hit_views[wanted]

    def _search_file(self, side: str) -> str:
        """The path of a side's search file, built from its source on first use (written
        aside and moved into place: readers never see half a file)."""
        source = self.left if side == "left" else self.right
        path = self.storage.path(self.storage.search_path(source.path))
        if not path.exists():
            with self.storage.temp_path(".parquet") as tmp:
                select = SEARCH_SQL.replace("$source", f"${side}")
                self._execute(f"COPY ({select}) TO '{tmp}' (FORMAT parquet)", [])
                os.replace(tmp, path)
        return str(path).replace("'", "''")

    def count(self, filters: Filters) -> int:
        """Return how many records match ``filters``: from the engine's summary and the
        decisions when only status and side are filtered, else counted."""
        if replace(filters, status=None, side=None) == Filters() and self.summary:
            return self._derived_count(filters.status, filters.side)
        own = replace(filters, side=None, key=None, q=None, amount_min=None, amount_max=None)
        if filters.needs_fields and own == Filters():
            # Only the records' own fields are filtered: each hit is one record of the
            # results (every record is there once), so the hits are the count.
            found = self.con.execute(f"SELECT count(*) FROM {self._hits(filters)}").fetchone()  # noqa: S608
            return int(found[0]) if found else 0
        sql, params = self._filtered(filters, None)
        found = self._execute(f"SELECT count(*) FROM ({sql}) x", params).fetchone()  # noqa: S608
        return int(found[0]) if found else 0

    def _derived_count(self, status: str | None, side: str | None) -> int:
        sides = [name for name in SIDES if side in (None, name)]
        if status is None:
            return sum(int((self.summary.get(name) or {}).get("rows", 0)) for name in sides)
        counts = self.counts()
        return sum(counts[name].get(f"status:{status}", 0) for name in sides)

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

    def _at(self, position: int) -> tuple[str, int] | None:
        """The side and row of the record at ``position`` (from 0) in the results file."""
        found = self._execute(
            'SELECT side, "row" FROM read_parquet($results, file_row_number = true) '
            "WHERE file_row_number = ?",
            [position],
        ).fetchone()
        return (str(found[0]), int(found[1])) if found else None

    def _keys(
        self, filters: Filters, after: tuple[str, int] | None, limit: int
    ) -> list[tuple[Any, ...]]:
        """The current records after the cursor, a window of row numbers at a time.

        The results are stored in (side, row) order with row-group statistics, so a
        window reads only its own row groups; it doubles until the page is full, and any
        depth of the file costs about the same.
        """
        if filters.needs_fields:
            # The records that match their own fields are known (_hits): one read, in order.
            sql, params = self._filtered(filters, after)
            cursor = self._execute(
                f'{sql} ORDER BY c.side, c."row" LIMIT ?',  # noqa: S608 - our own SQL
                [*params, limit],
            )
            self._names = [d[0] for d in cursor.description]
            return cursor.fetchall()
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
        if replace(filters, side=None) == Filters():
            # Every record is there once, stored in (side, row) order: the record before
            # the page is the one at its position in the file (a row-group read), and the
            # page is the one after it, like a cursor's.
            start = self.count(Filters(side="left")) if filters.side == "right" else 0
            before = self._at(start + offset - 1)
            keys = self._keys(filters, before, limit) if before is not None else []
            return self._with_fields(keys, self._names)
        # A numbered page past the first, filtered: the records before it have to be counted.
        sql, params = self._filtered(filters, None)
        cursor = self._execute(
            f'{sql} ORDER BY c.side, c."row" LIMIT ? OFFSET ?',  # noqa: S608 - our own SQL
            [*params, limit, offset],
        )
        names = [d[0] for d in cursor.description]
        return self._with_fields(cursor.fetchall(), names)

    def counts(self) -> dict[str, dict[str, int]]:
        """Return records per current status and side, and the state's figures: from the
        engine's summary and the decisions when the summary has every side's statuses
        (no read of the results), else counted."""
        if all("by_status" in (self.summary.get(side) or {}) for side in SIDES):
            return self._derived_counts()
        current, params = current_sql(None)
        sql = f"""SELECT side, status, decided_by, explained, pending, count(*)
                  FROM ({current}) c GROUP BY ALL"""  # noqa: S608
        out: dict[str, dict[str, int]] = {s: {} for s in SIDES}
        for side, status, decided_by, explained, pending, n in self._execute(
            sql, params
        ).fetchall():
            _tally(out[side], status, decided_by, explained, pending, int(n))
        return out

    def _derived_counts(self) -> dict[str, dict[str, int]]:
        """``counts`` from the summary: every record as the engine left it (decided by the
        engine, explained when matched, not pending), then each applied decision moves its
        record from the engine's figures to its current ones (as ``current_sql`` does)."""
        out: dict[str, dict[str, int]] = {s: {} for s in SIDES}
        for side in SIDES:
            for status, entry in self.summary[side]["by_status"].items():
                rows = int(entry.get("rows", 0))
                if rows:
                    _tally(out[side], status, "engine", status == "matched", False, rows)
        # The decisions grouped first (a handful of groups however many decisions).
        names = ["side", "status", "explained", "pending", "engine_status"]
        groups = self.overrides.select(names).group_by(names).aggregate([([], "count_all")])
        for side, status, explained, pending, engine, n in zip(
            *(groups[c].to_pylist() for c in [*names, "count_all"]), strict=True
        ):
            bucket = out[side]
            _tally(bucket, engine, "engine", engine == "matched", False, -n)
            person = status is not None
            current = status if person else engine
            done = engine == "matched" or bool(explained)
            _tally(bucket, current, "person" if person else "engine", done, bool(pending), n)
        return {side: {k: n for k, n in bucket.items() if n} for side, bucket in out.items()}


def _tally(
    bucket: dict[str, int], status: str, decided_by: str, explained: Any, pending: Any, n: int
) -> None:
    for key in (
        f"status:{status}",
        f"decided_by:{decided_by}:{status}",
        f"explained:{bool(explained)}",
        f"pending:{bool(pending)}",
    ):
        bucket[key] = bucket.get(key, 0) + n


def resolve_overrides(
    *, storage: Storage, job: Job, left: Source, right: Source, overrides: pa.Table
) -> pa.Table:
    """Return the overrides (OVERRIDES) that apply to the job's records (APPLIED)."""
    with Reader(storage=storage, job=job, left=left, right=right, overrides=NO_OVERRIDES) as r:
        r.con.register("o", overrides)
        table: pa.Table = r.con.sql(r._inline(RESOLVE_SQL)).to_arrow_table()
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
