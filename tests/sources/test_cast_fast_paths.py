"""The parser's fast paths (a direct cast of the common cell) give what the general paths give.

Amounts with "." as decimal mark, ISO dates and the trimming of keys,
currencies and descriptions each have a cheap form for the common cell; these
tests compare them, cell by cell, with the general expressions they stand in for.
"""

from __future__ import annotations

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recon.sources import dates
from recon.sources.amounts import AmountGrammar, trimmed

GRAMMAR = AmountGrammar(".", None)
CELLS = [
    "12.50",
    "-12.50",
    "+5",
    " 12.5 ",
    "12.",
    ".5",
    "0012.30",
    "-0.00",
    "1,234.56",
    "1 234.56",
    "1'234.56",
    "(12.00)",
    "12.00-",
    "- 12",
    "$12.00",
    "-$12",
    "EUR 12.00",
    "12 usd",
    "\t12.5\n",
    "12.5\u00a0",
    "99999999999999999999999999999999999999",
]


@pytest.fixture(scope="module")
def con() -> duckdb.DuckDBPyConnection:
    return duckdb.connect()


def _value(con: duckdb.DuckDBPyConnection, sql: str, cell: str) -> object:
    row = con.execute(f"SELECT {sql} FROM (SELECT CAST(? AS VARCHAR) AS c)", [cell]).fetchone()  # noqa: S608
    return row[0] if row else None


def _general(scale: int) -> str:
    digits = "regexp_replace(c, '[^0-9.]', '', 'g')"
    sign = "(CASE WHEN contains(c, '-') OR contains(c, '(') THEN '-' ELSE '' END)"
    return f"TRY_CAST({sign} || {digits} AS DECIMAL(38, {scale}))"


@pytest.mark.parametrize("cell", CELLS)
def test_a_valid_amount_reads_the_same_through_the_direct_cast(
    con: duckdb.DuckDBPyConnection, cell: str
) -> None:
    assert _value(con, GRAMMAR.valid("c"), cell)
    for scale in (2, 4):
        assert _value(con, GRAMMAR.value("c", scale), cell) == _value(con, _general(scale), cell)


def test_the_cells_the_direct_cast_would_misread_are_not_amounts(
    con: duckdb.DuckDBPyConnection,
) -> None:
    # An exponent or '_' would read differently through the cast: the grammar refuses them
    # (and blank cells), so the file is refused before any value is read.
    for cell in ("1e5", "1E5", "1_000", "0x10", "1.5e2", "", " "):
        assert not _value(con, GRAMMAR.valid("c"), cell), cell


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.from_regex(
        r"[ ]{0,2}[-+(]?[ ]?[$]?[0-9]{1,8}([.][0-9]{0,4})?[ ]?(EUR|usd)?[)-]?[ ]{0,2}",
        fullmatch=True,
    )
)
def test_generated_amounts_read_the_same_both_ways(
    con: duckdb.DuckDBPyConnection, cell: str
) -> None:
    if _value(con, GRAMMAR.valid("c"), cell):
        assert _value(con, GRAMMAR.value("c", 4), cell) == _value(con, _general(4), cell)


DATE_CELLS = [
    "2024-01-31",
    "2024-02-30",
    " 2024-01-31 ",
    "2024-1-5",
    "2024-01-31T10:00:00",
    "2024-01-31 10:00",
    "2024/01/31",
    "-024-01-31",
    "20240131",
    "",
    "abcd-ef-gh",
]


@pytest.mark.parametrize("cell", DATE_CELLS)
def test_an_iso_date_reads_the_same_through_the_direct_cast(
    con: duckdb.DuckDBPyConnection, cell: str
) -> None:
    general = dates.iso_sql("trim(c)")
    assert _value(con, dates.date_sql("c", dates.ISO), cell) == _value(con, general, cell)


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.text(alphabet=" \t\u00a0\u2003\u3000\x85ab", max_size=6))
def test_trimmed_agrees_with_trim_on_every_kind_of_space(
    con: duckdb.DuckDBPyConnection, text: str
) -> None:
    assert _value(con, trimmed("c"), text) == _value(con, "trim(c)", text)
