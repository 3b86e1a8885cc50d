"""The results file (one row per input record and side) and the summary.

Record tables and queries give, per matched or paired record, its values in
no particular order. Each side's results are assembled in Arrow at the
record's position in row order (see positions.py) rather than joined and
sorted in SQL, the two sides at once on cursors of their own, then both are
written by one COPY. Large sides are assembled a piece at a time on another
thread and streamed to the COPY, so their Arrow stays bounded. Record tables
are ordinary (not TEMP) tables of the run's in-memory database, so those
cursors see them.
"""

from __future__ import annotations

import os
import queue
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Context, Decimal
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from recon.duckdb_conn import quiet
from recon.engine.errors import EngineError
from recon.engine.load import Side
from recon.engine.positions import arrow, scatter, values

STATUSES = ("matched", "suggested", "break", "unmatched")
UNMATCHED = STATUSES.index("unmatched")
RESULT_COLUMNS = (
    "side",
    "row",
    "status",
    "pass",
    "match_id",
    "confidence",
    "amount_diff",
    "date_diff_days",
    "duplicate_key",
    "diff_fields",
)
RECORD_COLUMNS = (
    '"row", status_code, pass_code, match_id, confidence, amount_diff, date_diff_days, diff_fields'
)


def record_columns(match_id: str, confidence: str, diff: str, days: str) -> str:
    """The columns after side, row of a record table; status and pass are bound (?, ?)."""
    return (
        f"CAST(CAST(? AS VARCHAR) AS recon_status) AS status, "
        f"CAST(CAST(? AS VARCHAR) AS recon_pass) AS pass, "
        f"CAST({match_id} AS BIGINT) AS match_id, CAST({confidence} AS DOUBLE) AS confidence, "
        f"{diff} AS amount_diff, CAST({days} AS INTEGER) AS date_diff_days"
    )


def record_table_sql(table: str, side: str) -> str:
    """One side's records of a record table, in the shape write_results reads."""
    has_fields = table.startswith("break")
    return f"""SELECT "row", CAST(enum_code(status) AS UTINYINT) AS status_code,
               CAST(enum_code(pass) AS UTINYINT) AS pass_code, match_id, confidence,
               amount_diff, date_diff_days,
               {"diff_fields" if has_fields else "CAST(NULL AS VARCHAR)"} AS diff_fields
               FROM {table} WHERE side = '{side}'"""  # noqa: S608


def create_types(con: duckdb.DuckDBPyConnection, pass_names: list[str]) -> None:
    """Status and pass as ENUMs: one byte per record through the passes."""

    def quote(value: str) -> str:
        return "'" + value.replace("'", "''") + "'"

    statuses = ", ".join(quote(s) for s in STATUSES)
    con.execute(f"CREATE TYPE recon_status AS ENUM ({statuses})")
    con.execute("CREATE TYPE recon_side AS ENUM ('left', 'right')")
    passes = ", ".join(quote(p) for p in [*pass_names, "break"])
    con.execute(f"CREATE TYPE recon_pass AS ENUM ({passes})")


CHUNK_ROWS = 2_000_000  # results assembled in Arrow at a time, outside DuckDB's memory limit


def _duplicates(con: duckdb.DuckDBPyConnection, side: Side) -> np.ndarray:
    """Whether each record's key repeats within its side, in row order."""
    index = side.index
    duplicate = np.zeros(index.size, dtype=bool)
    repeated = con.sql(
        f'SELECT "row" FROM {side.table} SEMI JOIN {side.duplicates} USING (k)'  # noqa: S608
    ).to_arrow_table()["row"]
    duplicate[index.positions(values(repeated, np.int64))] = True
    return duplicate


def _side_results(
    con: duckdb.DuckDBPyConnection,
    side: Side,
    records: list[str],
    scale: int,
    duplicate: np.ndarray,
    span: tuple[int, int],
) -> tuple[pa.Table, np.ndarray]:
    """The results of one side's records at row-order positions span, and their status codes."""
    index = side.index
    start, stop = span
    size = stop - start
    ordered = index.sorted_rows()
    union = (
        " UNION ALL ".join(records) if records else (f"SELECT {', '.join(['NULL'] * 8)} LIMIT 0")
    )
    where = ""
    if size < index.size:
        where = f'WHERE "row" BETWEEN {int(ordered[start])} AND {int(ordered[stop - 1])}'
    found = con.sql(
        f"""SELECT CAST("row" AS BIGINT) AS "row", status_code, pass_code,
                   CAST(match_id AS BIGINT) AS match_id, CAST(confidence AS DOUBLE) AS confidence,
                   CAST(amount_diff AS DECIMAL(38, {scale})) AS amount_diff,
                   CAST(date_diff_days AS INTEGER) AS date_diff_days,
                   CAST(diff_fields AS VARCHAR) AS diff_fields
            FROM ({union}) {where}"""  # noqa: S608
    ).to_arrow_table()
    at = index.positions(values(found["row"], np.int64)) - start
    status = np.full(size, UNMATCHED, dtype=np.int8)
    status[at] = values(found["status_code"], np.uint8)

    def column(name: str) -> pa.Array:
        return scatter(found[name], at, size)

    fields = found["diff_fields"]
    if fields.null_count == len(fields):  # only breaks have them
        diff_fields: pa.Array | pa.ChunkedArray = pa.nulls(size, fields.type)
    else:
        source = np.full(size, -1, dtype=np.int64)
        source[at] = np.arange(len(found), dtype=np.int64)
        diff_fields = fields.take(arrow(source, pa.int64(), valid=source >= 0))

    table = pa.table(
        {
            "row": arrow(ordered[start:stop], pa.int64()),
            "status": arrow(status, pa.int8()),
            "pass": column("pass_code"),
            "match_id": column("match_id"),
            "confidence": column("confidence"),
            "amount_diff": column("amount_diff"),
            "date_diff_days": column("date_diff_days"),
            "duplicate_key": arrow(duplicate[start:stop], pa.bool_()),
            "diff_fields": diff_fields,
        }
    )
    return table, status


def _whole_side(
    con: duckdb.DuckDBPyConnection, side: Side, queries: list[str], scale: int
) -> tuple[pa.Table, dict[str, Any]]:
    """One side's results and summary in one piece, on a cursor of its own.

    The two sides are assembled at once: much of the assembly is NumPy and
    Arrow on one core, which the other side's DuckDB queries can use meanwhile.
    The cursor sees the record tables because they are not TEMP tables.
    """
    cursor = quiet(con.cursor())
    try:
        duplicate = _duplicates(cursor, side)
        table, status = _side_results(cursor, side, queries, scale, duplicate, (0, side.rows))
        return table, _side_summary(cursor, side, status, int(np.count_nonzero(duplicate)))
    finally:
        cursor.close()


class _ChunkStream:
    """Big sides' results, assembled CHUNK_ROWS rows at a time on a thread of their own.

    The COPY reads the pieces as an Arrow stream while the next one is built,
    so writing and assembling share the two cores, and few pieces are held
    outside DuckDB's memory limit (the queue holds one). Each piece carries a
    ``side`` code (0 left, 1 right). The generator the COPY pulls from only
    waits on the queue: every DuckDB query of the assembly runs on the
    thread's own cursor, never inside the COPY.
    """

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        sides: tuple[Side, Side],
        records: tuple[list[str], list[str]],
        scale: int,
    ) -> None:
        self.summaries: list[dict[str, Any]] = []
        self.error: BaseException | None = None
        self._queue: queue.Queue[pa.Table | None] = queue.Queue(maxsize=1)
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._produce, args=(quiet(con.cursor()), sides, records, scale), daemon=True
        )
        self._thread.start()

    def _put(self, item: pa.Table | None) -> bool:
        """Queue item unless the writer has stopped reading; whether it was queued."""
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
            except queue.Full:
                continue
            return True
        return False

    def _produce(
        self,
        cursor: duckdb.DuckDBPyConnection,
        sides: tuple[Side, Side],
        records: tuple[list[str], list[str]],
        scale: int,
    ) -> None:
        try:
            for code, (side, queries) in enumerate(zip(sides, records, strict=True)):
                duplicate = _duplicates(cursor, side)
                statuses = []
                for start in range(0, max(side.rows, 1), CHUNK_ROWS):
                    span = (start, min(start + CHUNK_ROWS, side.rows))
                    table, status = _side_results(cursor, side, queries, scale, duplicate, span)
                    statuses.append(status)
                    codes = arrow(np.full(table.num_rows, code, dtype=np.int8), pa.int8())
                    if not self._put(table.add_column(0, "side", codes)):
                        return
                dupes = int(np.count_nonzero(duplicate))
                status = np.concatenate(statuses)
                self.summaries.append(_side_summary(cursor, side, status, dupes))
        except BaseException as exc:  # noqa: BLE001 - raised again on the writer's thread
            self.error = exc
        finally:
            cursor.close()
            self._put(None)

    def reader(self) -> pa.RecordBatchReader:
        """The pieces in order as one stream (its schema is the first piece's)."""
        first = self._queue.get()
        if first is None:
            raise self.error or EngineError("no results were assembled")

        def batches() -> Iterator[pa.RecordBatch]:
            item: pa.Table | None = first
            while item is not None:
                yield from item.to_batches()
                item = self._queue.get()
            if self.error is not None:
                raise self.error

        return pa.RecordBatchReader.from_batches(first.schema, batches())

    def close(self) -> None:
        """Stop the assembly (if it still runs) and wait for its thread."""
        self._stop.set()
        self._thread.join()


def write_results(
    con: duckdb.DuckDBPyConnection,
    sides: tuple[Side, Side],
    records: tuple[list[str], list[str]],
    pass_names: list[str],
    scale: int,
    out_path: Path,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Write every record of both sides, sorted by side and row, atomically to out_path.

    ``records`` holds, per side, queries of the records that have a status
    other than unmatched (columns RECORD_COLUMNS). Returns both sides' summaries.
    When a side has more than ``CHUNK_ROWS`` records, both are assembled that
    many rows at a time and streamed to the writer (_ChunkStream), so the Arrow
    held outside DuckDB's memory limit stays bounded.
    """
    # Codes become ENUMs again: the Parquet writer stores an ENUM's dictionary as is,
    # where it would hash every string of a VARCHAR column.
    names = [*pass_names, "break"]
    status_sql = _enum_case("status", len(STATUSES), "recon_status")
    pass_sql = _enum_case('"pass"', len(names), "recon_pass")
    columns = (
        f'"row", {status_sql} AS status, {pass_sql} AS pass, match_id, confidence, amount_diff, '
        "date_diff_days, duplicate_key, diff_fields"
    )
    params = [*STATUSES, *names]

    def select(table: str, side: str) -> str:
        return f"SELECT CAST('{side}' AS recon_side) AS side, {columns} FROM {table}"  # noqa: S608

    tmp = out_path.with_name(f".{out_path.name}.{uuid.uuid4().hex}.tmp")
    target = f"TO '{_quote(tmp)}' (FORMAT parquet, COMPRESSION zstd, PARQUET_VERSION V2)"
    if any(side.rows > CHUNK_ROWS for side in sides):
        # Both arms ENUM constants: the writer then knows side has no NULLs and writes
        # it required, as it does the constant of the whole-side path.
        copy = f"""COPY (SELECT CASE side WHEN 0 THEN CAST('left' AS recon_side)
                                      ELSE CAST('right' AS recon_side) END AS side, {columns}
                         FROM results_stream) {target}"""  # noqa: S608
        return _write_streamed(con, sides, records, scale, (copy, params), (tmp, out_path))
    tables: list[pa.Table] = []
    summaries = []
    with ThreadPoolExecutor(2) as pool:
        done = [
            pool.submit(_whole_side, con, side, queries, scale)
            for side, queries in zip(sides, records, strict=True)
        ]
        for future in done:
            table, summary = future.result()
            tables.append(table)
            summaries.append(summary)
    con.register("results_left", tables[0])
    con.register("results_right", tables[1])
    try:
        con.execute(
            f"""COPY ({select("results_left", "left")} UNION ALL
                      {select("results_right", "right")}) {target}""",
            params + params,
        )
        os.replace(tmp, out_path)
    finally:
        con.unregister("results_left")
        con.unregister("results_right")
        tmp.unlink(missing_ok=True)
    return summaries[0], summaries[1]


def _write_streamed(
    con: duckdb.DuckDBPyConnection,
    sides: tuple[Side, Side],
    records: tuple[list[str], list[str]],
    scale: int,
    copy: tuple[str, list[str]],
    paths: tuple[Path, Path],
) -> tuple[dict[str, Any], dict[str, Any]]:
    """write_results for big sides: one COPY that reads the pieces as they are assembled.

    ``copy`` is the statement (reading ``results_stream``) and its parameters;
    it writes ``paths[0]``, which then replaces ``paths[1]``.
    """
    tmp, out_path = paths
    stream = _ChunkStream(con, sides, records, scale)
    try:
        con.register("results_stream", stream.reader())
        try:
            con.execute(*copy)
        except duckdb.Error:
            if stream.error is not None:  # the assembly failed: say why, not the stream
                raise stream.error from None
            raise
        finally:
            con.unregister("results_stream")
        os.replace(tmp, out_path)
    finally:
        stream.close()
        tmp.unlink(missing_ok=True)
    return stream.summaries[0], stream.summaries[1]


def _enum_case(column: str, values: int, enum: str) -> str:
    """A code column as its ENUM; the values are bound in order (they include pass names)."""
    arms = " ".join(f"WHEN {i} THEN ?" for i in range(values))
    return f"CAST(CASE {column} {arms} END AS {enum})"


def _quote(path: Path) -> str:
    return str(path).replace("'", "''")


# A sum is a DECIMAL(38, s) from DuckDB: up to 38 digits, past the default context's 28.
_SUMS = Context(prec=80)


def _money(value: Decimal, scale: int) -> str:
    return format(value.quantize(Decimal(1).scaleb(-scale), context=_SUMS), "f")


def _side_summary(
    con: duckdb.DuckDBPyConnection, side: Side, status: np.ndarray, duplicates: int
) -> dict[str, Any]:
    """Rows and amount per currency for every status of one side (all four always present)."""
    by_status: dict[str, Any] = {s: {"rows": 0, "amount": {}} for s in STATUSES}
    # The codes line up with the table's scan order, so a positional join pairs them.
    codes = pa.table({"code": arrow(side.index.to_scan_order(status), pa.int8())})
    con.register("status_codes", codes)
    try:
        rows = con.execute(
            f"""SELECT c.code, coalesce(s.ccy, '') AS ccy, count(*), sum(s.amt)
                FROM (SELECT amt, ccy FROM {side.table}) s POSITIONAL JOIN status_codes c
                GROUP BY ALL ORDER BY ALL"""  # noqa: S608
        ).fetchall()
    finally:
        con.unregister("status_codes")
    for code, ccy, n, total in rows:
        entry = by_status[STATUSES[code]]
        entry["rows"] += int(n)
        entry["amount"][ccy] = _money(total, side.scale)
    return {
        "rows": side.rows,
        "by_status": by_status,
        "duplicate_keys": duplicates,
    }
