"""Breaks: records left over after the passes that share their break_on values.

They are paired one-to-one, smallest amount difference first (then smallest
date difference, then left row, then right row), and each pair lists the
canonical fields that differ in ``diff_fields`` (in the order key, amount,
date, currency, description; normalised values are compared, so "ABC " and
"abc" are the same key).
"""

from __future__ import annotations

import duckdb

from recon.engine.assign import assign_one_to_one
from recon.engine.load import Side
from recon.engine.results import record_columns
from recon.engine.sql import COLUMN, check_estimate, estimate_pairs, join_on

BREAK_ORDER = "abs(diff), abs(ddays) NULLS LAST, lrow, rrow"


def _descriptions(con: duckdb.DuckDBPyConnection, side: Side, pairs: str, col: str) -> str:
    """A (row, nd) table of the normalised descriptions of the paired records of one side."""
    table = f"bdesc_{side.name}"
    if con.execute(
        "SELECT count(*) FROM duckdb_columns() WHERE table_name = ? AND column_name = 'nd'",
        [side.table],
    ).fetchone() == (1,):
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE {table} AS SELECT s.row, s.nd FROM {side.table} s
                SEMI JOIN {pairs} p ON s.row = p.{col}"""  # noqa: S608
        )
    else:
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE {table} AS
                SELECT CAST(s.row AS BIGINT) AS row, nrm_text(CAST(s.description AS VARCHAR)) AS nd
                FROM read_parquet(?) s SEMI JOIN {pairs} p ON s.row = p.{col}""",  # noqa: S608
            [str(side.path)],
        )
    return table


def run_breaks(
    con: duckdb.DuckDBPyConnection,
    break_on: tuple[str, ...],
    left: str,
    right: str,
    sides: tuple[Side, Side],
    *,
    max_candidates: int,
    out: str,
    settled: str | None = None,
) -> int:
    """Pair the remaining records on break_on into a new record table ``out``; return the count.

    ``settled`` is a query of (lrow, rrow) pairs already known to be breaks
    (see settle.py); the pools then hold only the records those pairs can not cover.
    """
    if not break_on:
        con.execute(
            f"""CREATE TEMP TABLE {out} AS SELECT 'left' AS side, CAST(NULL AS BIGINT) AS "row",
                {record_columns("NULL", "NULL", "NULL", "NULL")}, CAST(NULL AS VARCHAR)
                AS diff_fields LIMIT 0""",
            ["break", "break"],
        )
        return 0
    cols = [COLUMN[f] for f in break_on]
    known = 0
    if settled is not None:
        con.execute(f"CREATE OR REPLACE TEMP TABLE settled_breaks AS {settled}")
        row = con.execute("SELECT count(*) FROM settled_breaks").fetchone()
        known = int(row[0]) if row else 0
    check_estimate("break", estimate_pairs(con, cols, left, right) + known, max_candidates)
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE bcand AS
            SELECT l.row AS lrow, r.row AS rrow, l.amt - r.amt AS diff, l.d - r.d AS ddays
            FROM {left} l JOIN {right} r ON {join_on(cols)}"""  # noqa: S608
    )
    kept = assign_one_to_one(con, "bcand", BREAK_ORDER)
    if settled is not None:
        con.execute(
            f"""INSERT INTO {kept} (lrow, rrow) SELECT lrow, rrow FROM settled_breaks"""  # noqa: S608
        )
        con.execute("DROP TABLE settled_breaks")
    ldesc = _descriptions(con, sides[0], kept, "lrow")
    rdesc = _descriptions(con, sides[1], kept, "rrow")
    fields = ", ".join(
        f"CASE WHEN {a} IS DISTINCT FROM {b} THEN '{name}' END"
        for name, a, b in (
            ("key", "l.k", "r.k"),
            ("amount", "l.amt", "r.amt"),
            ("date", "l.d", "r.d"),
            ("currency", "l.ccy", "r.ccy"),
            ("description", "ld.nd", "rd.nd"),
        )
    )
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE bpairs AS
            SELECT k.lrow, k.rrow, l.amt - r.amt AS diff, l.d - r.d AS ddays,
                   concat_ws(',', {fields}) AS diff_fields
            FROM {kept} k JOIN {sides[0].table} l ON l.row = k.lrow
            JOIN {sides[1].table} r ON r.row = k.rrow
            LEFT JOIN {ldesc} ld ON ld.row = k.lrow LEFT JOIN {rdesc} rd ON rd.row = k.rrow"""  # noqa: S608
    )
    columns = record_columns("lrow", "NULL", "diff", "ddays")
    con.execute(
        f"""CREATE TEMP TABLE {out} AS
            SELECT 'left' AS side, lrow AS "row", {columns}, diff_fields FROM bpairs
            UNION ALL
            SELECT 'right', rrow, {columns}, diff_fields FROM bpairs""",  # noqa: S608
        ["break", "break", "break", "break"],
    )
    row = con.execute("SELECT count(*) FROM bpairs").fetchone()
    for table in (kept, ldesc, rdesc, "bpairs", "bcand"):
        con.execute(f"DROP TABLE {table}")
    return int(row[0]) if row else 0
