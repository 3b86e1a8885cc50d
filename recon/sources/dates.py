"""Dates from text, as DuckDB SQL: the format is read off the whole column, then applied.

Recognised: ISO ``2024-01-31`` (with an optional time), ``%d/%m/%Y``,
``%m/%d/%Y``, ``%d.%m.%Y``, ``%d-%m-%Y``, ``%m-%d-%Y`` (also with two-digit
years), ``%Y%m%d``, ``%Y/%m/%d`` and Excel serial numbers. ISO dates are
accepted in every column whatever its format, since they can not be misread.
"""

# ruff: noqa: S608 - SQL here is composed from generated column names (c1..cN) and
# literals quoted by sql_string(); no uploaded text is spliced in unquoted.

from __future__ import annotations

from dataclasses import dataclass

from recon.sources.amounts import sql_string
from recon.sources.options import EXCEL_SERIAL

ISO = "%Y-%m-%d"
ISO_PATTERN = (
    r"\d{4}-\d{1,2}-\d{1,2}(?:[T ]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?"
)
# One expression sorts every value into a shape: a single regex pass over the column.
SHAPE_PATTERN = (
    "^(?:(" + ISO_PATTERN + ")"
    r"|(\d{1,2})([/.-])(\d{1,2})([/.-])(\d{4}|\d{2})"
    r"|(\d{8})"
    r"|(\d{4}/\d{1,2}/\d{1,2})"
    r"|(\d{5}(?:\.\d+)?))$"
)
SHAPE_PARTS = ["iso", "p1", "s1", "p2", "s2", "y", "compact", "ymd", "serial"]
EXCEL_EPOCH = "1899-12-30"  # serial 1 is 1900-01-01 and Excel counts 1900-02-29


def shape_sql(value_sql: str) -> str:
    """SQL: the shape of one trimmed date value, e.g. ``iso``, ``/4``, ``.2``, ``compact``."""
    names = "[" + ", ".join(sql_string(p) for p in SHAPE_PARTS) + "]"
    m = f"regexp_extract({value_sql}, {sql_string(SHAPE_PATTERN)}, {names})"
    return m


def shape_stats_sql(table: str, value_sql: str, limit: int | None = None) -> str:
    """SQL: per shape, the count, the largest first and second parts and how often they differ.

    With ``limit``, only the first ``limit`` non-empty values are looked at.
    """
    top = f"LIMIT {limit}" if limit else ""
    return f"""
        WITH v AS (SELECT {shape_sql(value_sql)} AS m FROM {table}
                   WHERE coalesce({value_sql}, '') <> '' {top}),
        s AS (SELECT CASE WHEN m.iso <> '' THEN 'iso'
                          WHEN m.p1 <> '' AND m.s1 = m.s2 THEN m.s1 || length(m.y)
                          WHEN m.compact <> '' THEN 'compact'
                          WHEN m.ymd <> '' THEN 'ymd'
                          WHEN m.serial <> '' THEN 'serial'
                          ELSE 'other' END AS shape,
                     TRY_CAST(nullif(m.p1, '') AS INTEGER) AS p1,
                     TRY_CAST(nullif(m.p2, '') AS INTEGER) AS p2 FROM v)
        SELECT shape, count(*), max(p1), max(p2), count(*) FILTER (WHERE p1 <> p2)
        FROM s GROUP BY shape"""


@dataclass(frozen=True)
class ShapeStats:
    count: int
    max_first: int | None
    max_second: int | None
    differing: int


class AmbiguousDates(Exception):
    """Day/month order can not be told from the values seen; carries the two candidates."""

    def __init__(self, formats: tuple[str, str], separator: str) -> None:
        super().__init__(formats)
        self.formats = formats
        self.separator = separator


def parts_stats_sql(table: str, value_sql: str, separator: str) -> str:
    """SQL: over a whole column, the largest first and second parts of separated dates."""
    sep = sql_string(separator)
    first = f"TRY_CAST(split_part({value_sql}, {sep}, 1) AS INTEGER)"
    second = f"TRY_CAST(split_part({value_sql}, {sep}, 2) AS INTEGER)"
    return (
        f"SELECT count(*), max({first}), max({second}), "
        f"count(*) FILTER (WHERE {first} <> {second}) FROM {table} "
        f"WHERE {value_sql} LIKE {sql_string('%' + separator + '%' + separator + '%')}"
    )


def _separated(separator: str, year: str, stats: ShapeStats) -> str:
    day_first = f"%d{separator}%m{separator}{year}"
    month_first = f"%m{separator}%d{separator}{year}"
    first, second = stats.max_first or 0, stats.max_second or 0
    if first > 12:
        return day_first
    if second > 12:
        return month_first
    # Dotted dates are day-first by convention; equal parts read the same either way.
    if separator == "." or stats.differing == 0:
        return day_first
    raise AmbiguousDates((day_first, month_first), separator)


def choose_format(stats: dict[str, ShapeStats]) -> str:
    """Return the date format the column is written in; raises AmbiguousDates."""
    candidates = {s: st for s, st in stats.items() if s not in ("iso", "other")}
    if not candidates:
        return ISO
    shape = max(candidates, key=lambda s: (candidates[s].count, s))
    if shape == "compact":
        return "%Y%m%d"
    if shape == "ymd":
        return "%Y/%m/%d"
    if shape == "serial":
        return EXCEL_SERIAL
    separator, digits = shape[0], shape[1:]
    return _separated(separator, "%Y" if digits == "4" else "%y", candidates[shape])


def resolve_ambiguity(exc: AmbiguousDates, stats: ShapeStats) -> str:
    """Return the format whole-column ``stats`` settle on; re-raises when they do not."""
    year = exc.formats[0][-2:]
    return _separated(exc.separator, year, stats)


def iso_sql(value_sql: str) -> str:
    return (
        f"(CASE WHEN regexp_full_match({value_sql}, {sql_string(ISO_PATTERN)}) "
        f"THEN TRY_CAST(regexp_extract({value_sql}, '^(\\d{{4}}-\\d{{1,2}}-\\d{{1,2}})', 1) "
        "AS DATE) END)"
    )


def date_sql(cell_sql: str, fmt: str) -> str:
    """SQL: the DATE of one cell in ``fmt`` (or ISO), NULL when it is not one."""
    # strptime skips surrounding spaces itself; trimming every cell first costs a pass.
    value_sql = f"trim({cell_sql})"
    if fmt == ISO:
        # A bare YYYY-MM-DD (the common cell) is its own date part: cast it directly.
        return (
            f"(CASE WHEN regexp_full_match({cell_sql}, '\\d{{4}}-\\d{{2}}-\\d{{2}}') "
            f"THEN TRY_CAST({cell_sql} AS DATE) ELSE {iso_sql(value_sql)} END)"
        )
    if fmt == EXCEL_SERIAL:
        parsed = (
            f"(CASE WHEN regexp_full_match({value_sql}, '\\d{{1,6}}(?:\\.\\d+)?') "
            f"THEN DATE '{EXCEL_EPOCH}' + CAST(split_part({value_sql}, '.', 1) AS INTEGER) END)"
        )
    else:
        parsed = f"CAST(try_strptime({cell_sql}, {sql_string(fmt)}) AS DATE)"
    return f"coalesce({parsed}, {iso_sql(value_sql)})"


def describe(fmt: str) -> str:
    return "an Excel serial number" if fmt == EXCEL_SERIAL else fmt
