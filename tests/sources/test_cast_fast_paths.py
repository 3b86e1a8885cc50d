"""The parser's fast paths (a direct cast of the common cell) give what the general paths give.

Amounts with "." as decimal mark, ISO dates and the trimming of keys,
currencies and descriptions each have a cheap form for the common cell, and so
have the amount check, the count of decimals and the currency code; these
tests compare them, cell by cell, with the general expressions they stand in for.
"""

from __future__ import annotations

import random
from dataclasses import replace

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recon.sources import dates
from recon.sources.amounts import AmountGrammar, blank, trimmed
from recon.sources.canonical import currency_code_sql
from recon.sources.currencies import SYMBOL_CURRENCIES

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


# Cells of every amount style, in both decimal marks, and cells that are not amounts.
CHECK_CELLS = [
    *CELLS,
    "1.234,56",
    "-1,5",
    "1,5",
    "12,",
    "(1.234,56 EUR)",
    "12,345",
    "1.2.3",
    "1e5",
    "--12",
    "12.5abc",
    "12abc",
    "",
    " ",
    "-",
    ".",
    "12.50 EUR",
    "€ 1.234,56",
]
GRAMMARS = [AmountGrammar(".", None), AmountGrammar(",", None), AmountGrammar(",", ".")]


GRAMMAR_IDS = [f"{g.decimal}{g.thousands}" for g in GRAMMARS]


@pytest.fixture(scope="module")
def cells(con: duckdb.DuckDBPyConnection) -> str:
    """A table of the listed cells and 5,500 generated ones: one query checks them all (each
    query compiles the grammar's expression, so a query per cell would cost a second each)."""
    rng = random.Random(7)  # noqa: S311 - a seeded sample of cells, not a secret
    alphabet = "0123456789-+.,() E$\u20acU"
    generated = {"".join(rng.choices(alphabet, k=rng.randint(0, 10))) for _ in range(5000)}
    generated |= {
        f"{'-' if i % 3 else ''}{i * 7919}{'.' if i % 2 else ','}{i % 100:02d}" for i in range(500)
    }
    con.execute("CREATE OR REPLACE TABLE cells (c VARCHAR)")
    con.executemany(
        "INSERT INTO cells VALUES (?)", [[c] for c in [*CHECK_CELLS, *sorted(generated)]]
    )
    return "cells"


@pytest.mark.parametrize("grammar", GRAMMARS, ids=GRAMMAR_IDS)
def test_the_plain_amount_check_agrees_with_the_whole_grammar(
    con: duckdb.DuckDBPyConnection, cells: str, grammar: AmountGrammar
) -> None:
    fast, whole = grammar.valid("c"), grammar.valid_general("c")
    differ = con.execute(
        f"SELECT c FROM {cells} WHERE ({fast}) IS DISTINCT FROM ({whole})"  # noqa: S608
    ).fetchall()
    assert differ == []
    (valid,) = con.execute(f"SELECT count(*) FILTER (WHERE {fast}) FROM {cells}").fetchone()  # noqa: S608
    assert valid > 500  # the sample holds amounts, not only refusals


@pytest.mark.parametrize("grammar", GRAMMARS, ids=GRAMMAR_IDS)
def test_the_fraction_bound_is_never_below_the_count_of_decimals(
    con: duckdb.DuckDBPyConnection, cells: str, grammar: AmountGrammar
) -> None:
    rows = con.execute(
        f"SELECT c, {grammar.fraction_bound('c')}, {grammar.fraction_digits('c')} FROM {cells}"  # noqa: S608
    ).fetchall()
    assert [c for c, bound, digits in rows if bound < digits] == []
    plain = 0
    for cell, bound, digits in rows:
        after = cell.split(grammar.decimal, 1)[1] if grammar.decimal in cell else None
        if after and after.isdigit() and cell.isascii():
            assert bound == digits, cell  # a plain cell's bound is its count
            plain += 1
    assert plain > 100


def _currency_general(cell: str) -> str:
    symbols = " ".join(
        f"WHEN trim({cell}) = '{s}' THEN '{c}'" for s, c in SYMBOL_CURRENCIES.items()
    )
    return f"(CASE WHEN {blank(cell)} THEN NULL {symbols} ELSE upper(trim({cell})) END)"


@pytest.mark.parametrize(
    "cell",
    ["EUR", "eur", " EUR", "EUR ", "Eur", "\u20ac", " \u00a3 ", "EU", "EURO", "", " ", "\u00a0USD"],
)
def test_a_currency_cell_reads_the_same_through_the_fast_path(
    con: duckdb.DuckDBPyConnection, cell: str
) -> None:
    assert _value(con, currency_code_sql("c"), cell) == _value(con, _currency_general("c"), cell)


@pytest.mark.parametrize("grammar", [*GRAMMARS, AmountGrammar(".", ",")], ids=[*GRAMMAR_IDS, ".,"])
def test_three_letters_then_the_iso_list_is_the_grammar_with_every_code_spelled_out(
    con: duckdb.DuckDBPyConnection, grammar: AmountGrammar
) -> None:
    rng = random.Random(3)  # noqa: S311 - a seeded sample of cells, not a secret
    parts = ["12", "1,234.56", "1.234,56", ".5", "5.", "-", "+", "(", ")", " ", "$", "\u20ac"]
    parts += ["EUR", "eur", "Gbp", "ABC", "xyz", "EURO", "EU", "E", "XAU", "AAA"]
    sample = {"".join(rng.choices(parts, k=rng.randint(1, 5))) for _ in range(20_000)}
    con.execute("CREATE OR REPLACE TABLE coded (c VARCHAR)")
    con.executemany("INSERT INTO coded VALUES (?)", [[c] for c in sorted(sample)])
    spelled = replace(grammar, spelled=True)
    differ = con.execute(
        f"SELECT c FROM coded WHERE ({grammar.valid_general('c')}) IS DISTINCT FROM "  # noqa: S608
        f"({spelled.valid_general('c')})"
    ).fetchall()
    assert differ == []
    with_code = f"{grammar.valid_general('c')} AND regexp_matches(c, '[a-z]', 'i')"
    (coded,) = con.execute(f"SELECT count(*) FILTER (WHERE {with_code}) FROM coded").fetchone()  # noqa: S608
    assert coded > 40  # amounts with a currency code are among the sample, not only refusals


@pytest.mark.parametrize(("threshold", "spelled"), [(100_000, False), (0, True)])
def test_a_small_table_takes_the_letters_and_a_large_one_the_spelled_out_codes(
    tmp_path, monkeypatch: pytest.MonkeyPatch, threshold: int, spelled: bool
) -> None:
    import recon.sources.canonical as canonical
    from recon.sources.parsing import UploadRejected, ingest_file

    chosen: list[AmountGrammar] = []
    real = canonical.Canonical._choose_grammar

    def spy(self: canonical.Canonical, **kwargs: bool) -> AmountGrammar:
        chosen.append(real(self, **kwargs))
        return chosen[-1]

    monkeypatch.setattr(canonical, "SPELL_OUT_ROWS", threshold)  # rows above it: spelled out
    monkeypatch.setattr(canonical.Canonical, "_choose_grammar", spy)
    src = tmp_path / "amounts.csv"
    src.write_text("Reference,Amount,Date\nA,12 EUR,2024-01-01\nB,-3.50 eur,2024-01-02\n")
    result = ingest_file(src, tmp_path / "out.parquet", filename="amounts.csv", temp_dir=tmp_path)
    assert result.sums == {"EUR": "8.50"}
    src.write_text("Reference,Amount,Date\nA,12 EUR,2024-01-01\nB,12abc,2024-01-02\n")
    with pytest.raises(UploadRejected) as refused:
        ingest_file(src, tmp_path / "out2.parquet", filename="amounts.csv", temp_dir=tmp_path)
    assert refused.value.errors[0]["value"] == "12abc"
    assert [g.spelled for g in chosen] == [spelled, spelled]
