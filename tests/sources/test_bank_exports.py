"""CSV exports as banks write them (DESIGN 15, issue 14 items 2 and 5): each option, both sides."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest

from recon.sources.parsing import IngestResult, UploadRejected, ingest_file

BANKS = Path(__file__).parent.parent / "data" / "banks"


def ingest(tmp_path: Path, content: str | bytes, **kw: Any) -> IngestResult:
    src = tmp_path / "in.csv"
    src.write_bytes(content.encode() if isinstance(content, str) else content)
    return ingest_file(src, tmp_path / "out.parquet", filename="in.csv", **kw)


def refused(tmp_path: Path, content: str | bytes, **kw: Any) -> UploadRejected:
    with pytest.raises(UploadRejected) as caught:
        ingest(tmp_path, content, **kw)
    assert not (tmp_path / "out.parquet").exists()
    return caught.value


def amounts(tmp_path: Path) -> list[Decimal]:
    sql = f"SELECT amount FROM read_parquet('{tmp_path / 'out.parquet'}') ORDER BY row"  # noqa: S608
    return [a for (a,) in duckdb.sql(sql).fetchall()]


# -- signs ---------------------------------------------------------------------------


def test_a_recognised_sign_column_signs_the_amounts(tmp_path):
    # ING's export: unsigned "Bedrag" and "Af"/"Bij". Read without it, the sum was +2643.55.
    ingest(tmp_path, (BANKS / "csv_ing_nl_af_bij.csv").read_bytes())
    assert amounts(tmp_path) == [Decimal("-23.45"), Decimal("2500.00"), Decimal("-120.10")]


@pytest.mark.parametrize(
    "header, debit, credit",
    [
        ("CreditDebet", "D", "C"),
        ("S/H", "S", "H"),
        ("Soll/Haben", "Soll", "Haben"),
        ("DR/CR", "DR", "CR"),
    ],
)
def test_default_indicators_in_the_common_languages(tmp_path, header, debit, credit):
    content = (
        f"Reference,Amount,Date,{header}\nA,10.00,2024-01-01,{debit}\nB,4.00,2024-01-02,{credit}\n"
    )
    assert ingest(tmp_path, content).sums == {"": "-6.00"}


def test_an_unknown_indicator_is_a_row_problem_not_a_guess(tmp_path):
    content = "Reference,Amount,Date,Af Bij\nA,10.00,2024-01-01,Af\nB,4.00,2024-01-02,X\n"
    problem = refused(tmp_path, content).errors[0]
    assert (problem["row"], problem["column"]) == (2, "Af Bij")
    assert '"X" is not a known debit or credit value' in problem["message"]


def test_named_sign_column_with_own_values(tmp_path):
    content = "Ref;Summa;Datums;DK\nA;12,50;01.03.2024;D\nB;40,00;02.03.2024;K\n"
    options = {"sign_column": "DK", "debit_values": ["d"], "credit_values": ["k"]}
    assert ingest(tmp_path, content, options=options).sums == {"": "27.50"}


def test_an_amount_already_signed_beside_a_sign_column_is_refused(tmp_path):
    content = "Reference,Amount,Date,Af Bij\nA,-10.00,2024-01-01,Af\n"
    problem = refused(tmp_path, content).errors[0]
    assert "already signed" in problem["message"]


def test_debit_credit_columns_never_flip_a_sign_silently(tmp_path):
    content = "Reference,Date,Debit,Credit\nA,2024-01-01,-5.00,\nB,2024-01-02,,(3.00)\n"
    problems = refused(tmp_path, content).errors
    assert [p["message"] for p in problems] == [
        "a negative value in the debit column (debits are written unsigned)",
        "a negative value in the credit column (credits are written unsigned)",
    ]


# -- layout: header, footers, short and long rows ---------------------------------------


def test_no_header_row_with_named_columns_and_a_positional_mapping(tmp_path):
    content = "2024-03-01;INV-1;;100,00\n2024-03-02;INV-2;;-5,50\n"
    result = ingest(
        tmp_path,
        content,
        options={"header": False, "columns": ["When", "Ref", "", "Amount"]},
        mapping={"date": "When", "key": "#2", "amount": "#4"},
    )
    assert result.row_count == 2 and result.sums == {"": "94.50"}
    assert result.mapping["key"] == "Ref"


def test_a_headerless_file_is_told_to_use_header_false_not_skip_rows(tmp_path):
    error = refused(tmp_path, (BANKS / "csv_headerless_semicolon.csv").read_bytes())
    assert error.reason == "no_header"
    assert "options.header to false" in error.detail and "skip_rows" not in error.detail


def test_footer_lines_are_left_out_and_listed(tmp_path):
    result = ingest(tmp_path, (BANKS / "csv_de_sparkasse_footer.csv").read_bytes())
    assert result.row_count == 3
    assert [(s["line"], s["text"]) for s in result.skipped_lines] == [
        (8, "Alter Kontostand;1.000,00;EUR"),
        (9, "Neuer Kontostand;4.078,24;EUR"),
    ]


def test_a_balance_line_between_records_is_not_a_footer(tmp_path):
    content = (
        "Reference,Amount,Date\nA,1.00,2024-01-01\nOpening balance,,\n"
        "B,2.00,2024-01-02\nTotal,3.00,\n"
    )
    error = refused(tmp_path, content)
    assert {p["row"] for p in error.errors} == {2}  # the last line alone is the footer


def test_skip_footer_leaves_out_exactly_n_lines(tmp_path):
    content = "Reference,Amount,Date\nA,1.00,2024-01-01\nB,2.00,2024-01-02\nC,4.00,2024-01-03\n"
    result = ingest(tmp_path, content, options={"skip_footer": 1})
    assert result.sums == {"": "3.00"}
    assert result.skipped_lines == [{"line": 4, "text": "C,4.00,2024-01-03", "reason": "footer"}]


def test_empty_amounts_are_problems_unless_skipped_and_listed(tmp_path):
    content = "Reference,Amount,Date\nA,1.00,2024-01-01\nB,,2024-01-02\nC,2.00,2024-01-03\n"
    assert refused(tmp_path, content).errors[0]["message"] == "amount is empty"
    result = ingest(tmp_path, content, options={"empty_amount": "skip"})
    assert result.row_count == 2
    assert result.skipped_lines == [{"line": 3, "text": "B,2024-01-02", "reason": "empty amount"}]


def test_an_empty_amount_on_a_short_row_says_the_row_is_short(tmp_path):
    content = (
        "Reference,Date,Description,Amount\nA,2024-01-01,x,1.00\nB,2024-01-02\n"
        "C,2024-01-03,y,2.00\n"
    )
    problem = refused(tmp_path, content).errors[0]
    assert problem["row"] == 2
    assert problem["message"].startswith("amount is empty: the row is short (2 fields filled of 4")


def test_extra_empty_fields_at_the_end_are_ignored(tmp_path):
    result = ingest(
        tmp_path,
        (BANKS / "csv_us_chase.csv").read_bytes(),
        options={"date_format": "%m/%d/%Y", "currency": "USD"},
    )
    assert result.row_count == 3 and "column_8" not in result.columns


def test_longer_rows_are_problems_unless_ragged(tmp_path):
    content = "Reference,Amount,Date\nA,1.00,2024-01-01\nB,2.00,2024-01-02,oops\n"
    error = refused(tmp_path, content)
    assert error.reason == "ragged_row" and error.errors[0]["row"] == 2
    result = ingest(tmp_path, content, options={"ragged": True})
    assert result.columns == ["extra_1"] and result.row_count == 2


def test_lenient_quotes_read_unescaped_quotes_inside_fields(tmp_path):
    content = 'Reference,Amount,Date,Memo\nA,1.00,2024-01-01,"He said "hi" there"\n'
    assert refused(tmp_path, content).reason == "format"
    assert ingest(tmp_path, content, options={"quotes": "lenient"}).row_count == 1


# -- currencies and keys ---------------------------------------------------------------


def test_12abc_is_a_bad_amount_not_12_in_currency_abc(tmp_path):
    content = "Reference,Amount,Date\nA,12abc,2024-01-01\nB,12 EUR,2024-01-02\n"
    problem = refused(tmp_path, content).errors[0]
    assert (problem["row"], problem["value"]) == (1, "12abc")


def test_currency_codes_are_checked_against_iso_4217(tmp_path):
    content = "Reference,Amount,Date,Currency\nA,1.00,2024-01-01,EUR\nB,1.00,2024-01-02,ABC\n"
    problem = refused(tmp_path, content).errors[0]
    assert problem["row"] == 2 and "ISO 4217" in problem["message"]
    assert refused(tmp_path, "R,A,D\n", options={"currency": "XYZ"}).reason == "bad_options"


def test_symbols_set_the_currency_only_where_unambiguous(tmp_path):
    content = "Reference,Amount,Date\nA,€ 1.00,2024-01-01\nB,£2.00,2024-01-02\nC,$3.00,2024-01-03\n"
    assert ingest(tmp_path, content).sums == {"EUR": "1.00", "GBP": "2.00", "": "3.00"}
    with_option = ingest(tmp_path, content, options={"currency": "CAD"})
    assert with_option.sums == {"EUR": "1.00", "GBP": "2.00", "CAD": "3.00"}


def test_a_key_pattern_extracts_the_key_from_the_description(tmp_path):
    content = (
        "Date,Amount,Description\n2024-01-01,10.00,Payment INV-2024-7 thanks\n"
        "2024-01-02,5.00,No reference here\n"
    )
    result = ingest(tmp_path, content, options={"key_pattern": r"(INV-\d{4}-\d+)"})
    assert result.has_key
    keys = duckdb.sql(
        f"SELECT key FROM read_parquet('{tmp_path / 'out.parquet'}') ORDER BY row"  # noqa: S608
    ).fetchall()
    assert keys == [("INV-2024-7",), ("",)]
    other = tmp_path / "two-groups"
    other.mkdir()
    two_groups = {"key_pattern": "INV-(\\d+)-(\\d+)"}
    assert refused(other, content, options=two_groups).reason == "bad_options"


def test_a_source_without_a_key_uploads(tmp_path):
    result = ingest(tmp_path, "Date,Amount\n2024-01-01,1.00\n")
    assert not result.has_key and result.row_count == 1


# -- encodings and languages ----------------------------------------------------------


@pytest.mark.parametrize(
    "encoding, text",
    [
        ("cp1250", "Data;Opis;Kwota\n01.02.2024;Zapłata za fakturę, Łódź;-12,50\n"),
        ("cp1257", "Data;Aprašymas;Suma\n01.02.2024;Mokėjimas už prekes, Šiauliai;-12,50\n"),
        ("cp1251", "Дата;Описание;Сумма\n01.02.2024;Оплата по счёту;-12,50\n"),
    ],
)
def test_encodings_beyond_western_europe_are_detected(tmp_path, encoding, text):
    result = ingest(
        tmp_path,
        text.encode(encoding),
        mapping=dict(
            zip(("date", "description", "amount"), text.split("\n")[0].split(";"), strict=True)
        ),
    )
    assert result.detected_options["encoding"] == encoding
    (description,) = duckdb.sql(
        f"SELECT description FROM read_parquet('{tmp_path / 'out.parquet'}')"  # noqa: S608
    ).fetchall()[0]
    assert description == text.split("\n")[1].split(";")[1]


def test_an_encoding_problem_names_the_line_and_the_detected_encoding(tmp_path):
    content = ("Reference,Amount,Date\nA,1.00,2024-01-01\nB,2.00,2024-01-02,Zapłata\n").encode(
        "cp1250"
    )
    error = refused(tmp_path, content, options={"encoding": "utf-8"})
    assert error.reason == "encoding"
    assert "line 3" in error.detail and "cp1250" in error.detail


@pytest.mark.parametrize(
    "header",
    [
        "Transactiedatum;Omschrijving;Bedrag",
        "Buchungstag;Verwendungszweck;Betrag",
        "Date opération;Libellé;Montant",
        "Fecha;Concepto;Importe",
    ],
)
def test_headers_of_common_export_languages_need_no_mapping(tmp_path, header):
    result = ingest(tmp_path, f"{header}\n01.02.2024;Text;-1,50\n")
    assert set(result.mapping) == {"date", "description", "amount"}
    assert result.sums == {"": "-1.50"}
