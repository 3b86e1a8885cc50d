"""Amounts written in any supported style read back as the same exact Decimal."""

# ruff: noqa: S608 - queries over the test's own temporary files

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recon.sources.amounts import AmountGrammar, choose_scale
from recon.sources.parsing import UploadRejected, ingest_file

# (decimal mark, thousands separator, positive form, negative form); {n} is the unsigned number.
STYLES = [
    (".", "", "{n}", "-{n}"),
    (".", ",", "{n}", "({n})"),
    (".", ",", "{n}", "{n}-"),
    (".", ",", "${n}", "-${n}"),
    (".", ",", "${n}", "$ -{n}"),
    (".", ",", "EUR {n}", "EUR -{n}"),
    (".", ",", "{n} usd", "-{n} usd"),
    (".", ",", "+{n}", "(GBP {n})"),
    (".", "'", "{n}", "-{n}"),
    (".", " ", "{n}", "-{n}"),
    (",", ".", "{n}", "-{n}"),
    (",", ".", "€ {n}", "€ -{n}"),
    (",", ".", "{n} €", "({n} €)"),
    (",", ".", "{n}", "{n}-"),
    (",", " ", "{n} EUR", "-{n} EUR"),
    (",", "\u00a0", "{n}", "-{n}"),
    (",", "", "{n}", "-{n}"),
]
Style = tuple[str, str, str, str]


def format_amount(value: Decimal, style: Style) -> str:
    """Write ``value`` the way a bank export might, without ever going through a float."""
    decimal, thousands, positive, negative = style
    whole, _, fraction = format(abs(value), "f").partition(".")
    groups = []
    while len(whole) > 3:
        groups.insert(0, whole[-3:])
        whole = whole[:-3]
    groups.insert(0, whole)
    number = thousands.join(groups) + (decimal + fraction if fraction else "")
    return (negative if value < 0 else positive).format(n=number)


amounts = st.decimals(
    min_value=Decimal("-999999999999999.999999"),
    max_value=Decimal("999999999999999.999999"),
    places=6,
    allow_nan=False,
    allow_infinity=False,
) | st.integers(min_value=-(10**18), max_value=10**18).map(Decimal)
styles = st.sampled_from(STYLES)


def _parse(grammar: AmountGrammar, text: str, scale: int = 2) -> tuple[bool, Decimal | None]:
    rows = (
        duckdb.connect()
        .execute(
            f"SELECT {grammar.valid('v')}, {grammar.value('v', scale)} FROM (SELECT ? AS v)", [text]
        )
        .fetchall()
    )
    return rows[0]


def _parse_all(
    grammar: AmountGrammar, texts: list[str], scale: int
) -> dict[str, tuple[bool, Decimal | None]]:
    rows = (
        duckdb.connect()
        .execute(
            f"SELECT v, {grammar.valid('v')}, {grammar.value('v', scale)} "
            "FROM (SELECT unnest(?) AS v)",
            [texts],
        )
        .fetchall()
    )
    return {text: (valid, value) for text, valid, value in rows}


def _scale(value: Decimal) -> int:
    exponent = value.as_tuple().exponent
    assert isinstance(exponent, int)
    return choose_scale(max(0, -exponent))


@given(cases=st.lists(st.tuples(amounts, styles), min_size=1, max_size=40))
@settings(max_examples=40, deadline=None)
def test_every_style_reads_back_exactly_through_sql(
    cases: list[tuple[Decimal, Style]],
) -> None:
    texts = [format_amount(value, style) for value, style in cases]
    scale = max(_scale(value) for value, _ in cases)
    # Both the explicit separator and the default set (other mark, space, ', nbsp) work.
    for explicit in (True, False):
        for decimal in (".", ","):
            picked = [(v, t, s) for (v, s), t in zip(cases, texts, strict=True) if s[0] == decimal]
            by_sep: dict[str | None, list[tuple[Decimal, str]]] = {}
            for value, text, style in picked:
                by_sep.setdefault(style[1] if explicit else None, []).append((value, text))
            for thousands, items in by_sep.items():
                parsed = _parse_all(AmountGrammar(decimal, thousands), [t for _, t in items], scale)
                for value, text in items:
                    assert parsed[text] == (True, value), (text, decimal, thousands)


@pytest.mark.parametrize(
    ("text", "decimal", "expected"),
    [
        ("1,234.56", ".", "1234.56"),
        ("1.234,56", ",", "1234.56"),
        ("(1,234.56)", ".", "-1234.56"),
        ("-12.00", ".", "-12.00"),
        ("12.00-", ".", "-12.00"),
        ("$1,234.56", ".", "1234.56"),
        ("EUR 12", ".", "12.00"),
        ("€ 1.234,56", ",", "1234.56"),
        ("+0.5", ".", "0.50"),
        (".5", ".", "0.50"),
        ("1'234.50", ".", "1234.50"),
    ],
)
def test_documented_examples(text: str, decimal: str, expected: str) -> None:
    assert _parse(AmountGrammar(decimal), text) == (True, Decimal(expected))


@pytest.mark.parametrize(
    "text",
    ["twelve", "1.2.3", "(5.00", "-(5.00)", "--5", "EUR 5 USD", "1,23.45", "5 5", "12e3", ""],
)
def test_not_amounts_are_refused(text: str) -> None:
    valid, _ = _parse(AmountGrammar("."), text)
    assert not valid


@given(
    decimal=st.sampled_from([".", ","]),
    cases=st.lists(st.tuples(amounts, styles), min_size=1, max_size=30),
)
@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_uploaded_sum_equals_the_input_to_the_last_decimal(
    decimal: str, cases: list[tuple[Decimal, Style]], tmp_path: Path
) -> None:
    cases = [(v, s) for v, s in cases if s[0] == decimal] or [(Decimal("1.5"), STYLES[0])]
    decimal = cases[0][1][0]
    lines = ["Reference;Amount;Date"]
    for i, (value, style) in enumerate(cases):
        lines.append(f"R{i};{format_amount(value, style)};2024-01-01")
    src = tmp_path / "amounts.csv"
    src.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "amounts.parquet"
    out.unlink(missing_ok=True)
    try:
        result = ingest_file(src, out, filename="amounts.csv", options={"decimal": decimal})
    except UploadRejected as exc:  # pragma: no cover - shown when the property fails
        pytest.fail(f"{exc.detail}: {exc.errors}")
    total = sum((value for value, _ in cases), Decimal(0))
    # Sums are per currency ("EUR 12" carries one); together they are the input's total.
    assert sum(Decimal(s) for s in result.sums.values()) == total
    assert all(len(s.partition(".")[2]) == result.amount_scale for s in result.sums.values())
    written = duckdb.sql(f"SELECT amount FROM read_parquet('{out}') ORDER BY row").fetchall()
    assert [a for (a,) in written] == [value for value, _ in cases]
