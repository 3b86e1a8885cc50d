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
from recon.engine.sql import (
    COLUMN,
    DIFF_FIELDS,
    check_estimate,
    diff_fields_sql,
    diff_mask_sql,
    estimate_pairs,
    join_on,
    rule_column,
)

BREAK_ORDER = "abs(diff), abs(ddays) NULLS LAST, lrow, rrow"


def _has_descriptions(con: duckdb.DuckDBPyConnection, side: Side) -> bool:
    """Whether the side's table holds normalised descriptions (``nd``); both sides do or neither."""
    return con.execute(
        "SELECT count(*) FROM duckdb_columns() WHERE table_name = ? AND column_name = 'nd'",
        [side.table],
    ).fetchone() == (1,)


def _descriptions(con: duckdb.DuckDBPyConnection, side: Side, pairs: str, col: str) -> str:
    """A (row, nd) table of the normalised descriptions of the paired records of one side."""
    table = f"bdesc_{side.name}"
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

    ``settled`` is a query of (lrow, rrow, diff, ddays, dm) pairs already known
    to be breaks (see settle.py; ``dm`` their difference mask, with the
    description bit when the sides hold descriptions); the pools then hold
    only the records those pairs can not cover.
    """
    if not break_on:
        con.execute(
            f"""CREATE TABLE {out} AS SELECT 'left' AS side, CAST(NULL AS BIGINT) AS "row",
                {record_columns("NULL", "NULL", "NULL", "NULL")}, CAST(NULL AS VARCHAR)
                AS diff_fields LIMIT 0""",
            ["break", "break"],
        )
        return 0
    cols = [rule_column(f) for f in break_on]
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
    loaded = _has_descriptions(con, sides[0])
    compared = {name: (f"l.{COLUMN[name]}", f"r.{COLUMN[name]}") for name in DIFF_FIELDS}
    if not loaded:
        del compared["description"]
    pairs = f"""SELECT k.lrow, k.rrow, l.amt - r.amt AS diff, l.d - r.d AS ddays,
                {diff_mask_sql(compared)} AS dm
                FROM {kept} k JOIN {left} l ON l.row = k.lrow
                JOIN {right} r ON r.row = k.rrow"""  # noqa: S608
    if settled is not None:
        pairs += " UNION ALL SELECT lrow, rrow, diff, ddays, dm FROM settled_breaks"
    con.execute(f"CREATE OR REPLACE TEMP TABLE bmask AS {pairs}")
    if settled is not None:
        con.execute("DROP TABLE settled_breaks")
    drop = [kept, "bmask", "bpairs", "bcand"]
    if loaded:
        fields = diff_fields_sql("dm")
        described = "bmask"
    else:
        # Only the paired records' descriptions are read (and normalised) from the files.
        ldesc = _descriptions(con, sides[0], "bmask", "lrow")
        rdesc = _descriptions(con, sides[1], "bmask", "rrow")
        drop += [ldesc, rdesc]
        differs = "CAST((ld.nd IS DISTINCT FROM rd.nd) AS UTINYINT) * 16"
        fields = diff_fields_sql(f"(dm + {differs})")
        described = f"""bmask LEFT JOIN {ldesc} ld ON ld.row = lrow
                        LEFT JOIN {rdesc} rd ON rd.row = rrow"""
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE bpairs AS
            SELECT lrow, rrow, diff, ddays, {fields} AS diff_fields FROM {described}"""  # noqa: S608
    )
    columns = record_columns("lrow", "NULL", "diff", "ddays")
    con.execute(
        f"""CREATE TABLE {out} AS
            SELECT 'left' AS side, lrow AS "row", {columns}, diff_fields FROM bpairs
            UNION ALL
            SELECT 'right', rrow, {columns}, diff_fields FROM bpairs""",  # noqa: S608
        ["break", "break", "break", "break"],
    )
    row = con.execute("SELECT count(*) FROM bpairs").fetchone()
    for table in drop:
        con.execute(f"DROP TABLE {table}")
    return int(row[0]) if row else 0
