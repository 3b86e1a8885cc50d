"""The SQL of a job's results in their current state: filters, cursors, the current view.

The results Parquet is the engine's answer; people's decisions arrive as the small
table of applied overrides ``oe`` (``OVERRIDES``, resolved against the engine's
statuses by ``RESOLVE_SQL``), and the current columns of a record are the engine's
with the decision applied. ``recon.jobs.results`` runs these statements.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from recon.engine.results import RESULT_COLUMNS
from recon.errors import ValidationError

SIDES = ("left", "right")
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


def current_sql(status: str | None) -> tuple[str, list[Any]]:
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


RESOLVE_SQL = """
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


def where_sql(filters: Filters, after: tuple[str, int] | None) -> tuple[str, list[Any]]:
    clauses, params = [], []
    for column, value in (
        ("c.side", filters.side),
        ("c.pass", filters.pass_name),
        ("c.match_id", filters.match_id),
    ):
        if value is not None:
            clauses.append(f"{column} = ?")
            params.append(value)
    if filters.grouped:
        clauses.append("c.match_id IS NOT NULL")
    if filters.rows is not None:
        clauses.append('c."row" >= ? AND c."row" < ?')
        params.extend(filters.rows)
    if after is not None:
        clauses.append('(c.side, c."row") > (?, ?)')
        params.extend(after)
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


SEARCH_SEPARATOR = "\x1f"  # between key and description in a search file's text
SEARCH_SQL = (
    'SELECT "row", lower(CAST(key AS VARCHAR)) AS key, '
    "lower(coalesce(CAST(key AS VARCHAR), '') || chr(31) || "
    "coalesce(CAST(description AS VARCHAR), '')) AS text FROM read_parquet($source)"
)


def search_where(filters: Filters) -> tuple[str, list[Any]] | None:
    """The key and text filters as a condition on a source's search file (``SEARCH_SQL``:
    lowercased once, so a search reads one column and lowers nothing), or None when the
    filters need the source itself (amount bounds; a text the separator could fool)."""
    if filters.amount_min is not None or filters.amount_max is not None:
        return None
    texts = [t for t in (filters.key, filters.q) if t is not None]
    if not texts or any(not t or SEARCH_SEPARATOR in t for t in texts):
        return None
    clauses, params = [], []
    if filters.key is not None:
        clauses.append("contains(key, lower(?))")
        params.append(filters.key)
    if filters.q is not None:  # in the key or the description, never across the two
        clauses.append("contains(text, lower(?))")
        params.append(filters.q)
    return " AND ".join(clauses), params


def fields_where(filters: Filters) -> tuple[str, list[Any]]:
    """The filters on a record's own fields (key, text, amount), as a condition on one
    side's source rows, and its parameters."""
    clauses, params = [], []
    key, description = "CAST(key AS VARCHAR)", "CAST(description AS VARCHAR)"
    if filters.key is not None:
        clauses.append(f"contains(lower({key}), lower(?))")
        params.append(filters.key)
    if filters.q is not None:
        clauses.append(
            f"(contains(lower({key}), lower(?)) OR contains(lower({description}), lower(?)))"
        )
        params.extend([filters.q, filters.q])
    # Amounts compare by size: a debit of -250.00 is found by 200..300 like a credit.
    size = "abs(CAST(amount AS DECIMAL(38, 18)))"
    if filters.amount_min is not None:
        clauses.append(f"{size} >= CAST(? AS DECIMAL(38, 18))")
        params.append(str(filters.amount_min))
    if filters.amount_max is not None:
        clauses.append(f"{size} <= CAST(? AS DECIMAL(38, 18))")
        params.append(str(filters.amount_max))
    return " AND ".join(clauses) or "true", params


def fields_sql(alias: str, source: str, extra: list[str] | None = None) -> str:
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


def pairs_select(records: str, scale: int) -> str:
    """One row per match, suggestion or break of the current ``records`` (a query with
    ``match_id``): both sides' records side by side (keys joined with "; ", amounts summed
    exactly at ``scale``, the difference left minus right), by match."""
    fields = fields_sql("p", "page p")

    def total(side: str) -> str:
        return (
            f"coalesce(sum(CAST(amount AS DECIMAL(38, {scale}))) FILTER (WHERE side = '{side}'), 0)"
        )

    return f"""
            WITH page AS ({records}),
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
            ORDER BY match_id, status, pass"""  # noqa: S608 - our own SQL


FORMULA = r"'^[=+\-@\t\r\n]'"  # cells a spreadsheet runs as a formula (OWASP), as SQL
QUOTE = "''''"  # the SQL literal of one single quote


def neutralised(column: str) -> str:
    """The SQL of ``column`` as text, with a leading ' when a spreadsheet would run it."""
    text = f"CAST({column} AS VARCHAR)"
    return f"CASE WHEN regexp_matches({text}, {FORMULA}) THEN {QUOTE} || {text} ELSE {text} END"
