"""Which rows of a loaded table are records: the view ``src`` over the table ``raw``.

Left out, and listed in the upload's ``skipped_lines`` (``{line, text}``) so
nothing disappears unseen:
- the footer: the lines after the last record (balances, totals, disclaimers),
  found as the trailing rows that don't look like records (no amount, or a date
  cell that is not a date); only what comes after the last record can be a
  footer, so a bad record is still a row problem. ``skip_footer: N`` instead
  leaves out exactly the last N non-empty rows.
- with ``empty_amount: "skip"``, rows whose amount is empty.
Rows whose cells are all empty are left out too, silently, as before (their
row numbers are not reused).
"""

# ruff: noqa: S608 - SQL here is composed from generated column names (c1..cN) and
# literals quoted by sql_string(); no uploaded text is spliced in unquoted.

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import duckdb

from recon.sources import dates
from recon.sources.amounts import blank, sql_string
from recon.sources.mapping import Resolved
from recon.sources.options import Options
from recon.sources.problems import col

# Footers are short: the tail is looked at first, the whole table only when the tail
# holds no record at all.
TAIL_ROWS = 1_000
MAX_SKIPPED_LISTED = 1_000


@dataclass(frozen=True)
class Table:
    """How to read ``raw``: its row number expression, width, and each row's file line."""

    row_sql: str  # "rowid + 1" for CSV, "row" for XLSX (the sheet row from the header)
    width: int
    first_line: int  # the file line (or sheet row) of row 1
    separator: str  # how a skipped line's cells are shown joined


def _record_like(resolved: Resolved) -> str:
    f = resolved.fields
    amounts = [f["amount"]] if "amount" in f else [f[k] for k in ("debit", "credit") if k in f]
    has_amount = " OR ".join(f"NOT {blank(col(i))}" for i in amounts) or "true"
    if f.get("date") is None:
        return f"({has_amount})"
    dated = f"regexp_full_match(trim({col(f['date'])}), {sql_string(dates.SHAPE_PATTERN)})"
    return f"(({has_amount}) AND coalesce({dated}, false))"


def _footer_start(con: duckdb.DuckDBPyConnection, table: Table, resolved: Resolved) -> int | None:
    """The first row number after the last record-like row, or None when there is no footer."""
    rows = f"SELECT {table.row_sql} AS row, * FROM raw"
    like = _record_like(resolved)
    last = f"SELECT max(row) FILTER (WHERE {like}), max(row) FROM ({rows}@WHERE@)"
    (total,) = con.execute("SELECT count(*) FROM raw").fetchone() or (0,)
    tail = f" WHERE rowid >= {max(0, int(total) - TAIL_ROWS)}"
    found, end = con.execute(last.replace("@WHERE@", tail)).fetchone() or (None, None)
    if found is None:
        found, end = con.execute(last.replace("@WHERE@", "")).fetchone() or (None, None)
    if found is None or end is None or found >= end:
        return None
    return int(found) + 1


def _listed(
    con: duckdb.DuckDBPyConnection, table: Table, where: str, reason: str
) -> list[dict[str, Any]]:
    cells = ", ".join(col(i) for i in range(table.width))
    sep = sql_string(table.separator)
    rows = con.execute(
        f"SELECT row, concat_ws({sep}, {cells}) FROM (SELECT {table.row_sql} AS row, * FROM raw) "
        f"WHERE {where} ORDER BY row LIMIT {MAX_SKIPPED_LISTED}"
    ).fetchall()
    return [
        {"line": table.first_line + int(row) - 1, "text": text, "reason": reason}
        for row, text in rows
        if text
    ]


def create_records_view(
    con: duckdb.DuckDBPyConnection, table: Table, resolved: Resolved, options: Options
) -> list[dict[str, Any]]:
    """CREATE VIEW src (row, c1 .. cN) over raw without the rows left out; return those listed."""
    empty = f"coalesce({', '.join(col(i) for i in range(table.width))}) IS NULL"
    (blank_rows,) = con.execute(f"SELECT count(*) FROM raw WHERE {empty}").fetchone() or (0,)
    exclude: list[str] = [empty] if blank_rows else []
    skipped: list[dict[str, Any]] = []
    footer = _footer_from(con, table, resolved, options, empty)
    if footer is not None:
        where = f"row >= {footer} AND NOT ({empty})"
        skipped += _listed(con, table, where, "footer")
        exclude.append(f"row >= {footer}")
    if options.empty_amount == "skip" and "amount" in resolved.fields:
        amount = blank(col(resolved.fields["amount"]))
        where = f"{amount} AND NOT ({empty})" + (f" AND row < {footer}" if footer else "")
        skipped += _listed(con, table, where, "empty amount")
        exclude.append(amount)
    # Most files leave nothing out: then every later scan is spared the filter.
    condition = f" WHERE NOT ({' OR '.join(exclude)})" if exclude else ""
    con.execute(
        f"CREATE VIEW src AS SELECT * FROM (SELECT {table.row_sql} AS row, "
        f"{', '.join(col(i) for i in range(table.width))} FROM raw){condition}"
    )
    return sorted(skipped, key=lambda s: s["line"])


def _footer_from(
    con: duckdb.DuckDBPyConnection,
    table: Table,
    resolved: Resolved,
    options: Options,
    empty: str,
) -> int | None:
    if options.skip_footer is None:
        return _footer_start(con, table, resolved)
    if options.skip_footer == 0:
        return None
    row = con.execute(
        f"SELECT min(row) FROM (SELECT row FROM (SELECT {table.row_sql} AS row, * FROM raw) "
        f"WHERE NOT ({empty}) ORDER BY row DESC LIMIT {int(options.skip_footer)})"
    ).fetchone()
    return None if row is None or row[0] is None else int(row[0])
