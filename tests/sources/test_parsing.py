"""Behaviour of ingest_file beyond the corpus: limits, detection over whole columns, robustness."""

# ruff: noqa: S608 - queries over the test's own temporary files

from __future__ import annotations

import gc
import io
import zipfile
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openpyxl import Workbook

from recon.errors import ValidationError
from recon.sources import dialect
from recon.sources.parsing import IngestResult, Limits, UploadRejected, ingest_file
from recon.sources.xlsx import READERS, XlsxSheet

DATA = Path(__file__).parent.parent / "data"


def ingest(
    tmp_path: Path, content: bytes | str, name: str = "upload.csv", **kwargs
) -> IngestResult:
    src = tmp_path / "upload.bin"
    src.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return ingest_file(src, tmp_path / "out.parquet", filename=name, **kwargs)


def rows(tmp_path: Path) -> list[tuple]:
    return duckdb.sql(f"SELECT * FROM read_parquet('{tmp_path / 'out.parquet'}')").fetchall()


def test_rejection_is_a_422_validation_error_with_a_stable_code(tmp_path: Path) -> None:
    with pytest.raises(ValidationError) as caught:
        ingest(tmp_path, "Reference,Amount,Date\nA,x,2024-01-01\n")
    body = caught.value.to_problem()
    assert (body["status"], body["code"], body["reason"]) == (422, "upload_rejected", "bad_amount")


def test_problems_are_capped_at_fifty_in_row_order_with_the_total(tmp_path: Path) -> None:
    lines = ["Reference,Amount,Date"] + [
        f"R{i},{'oops' if i % 2 else '1.00'},2024-01-01" for i in range(1, 241)
    ]
    with pytest.raises(UploadRejected) as caught:
        ingest(tmp_path, "\n".join(lines))
    rejected = caught.value
    assert rejected.total == 120
    assert [p["row"] for p in rejected.errors] == list(range(1, 100, 2))
    assert {p["value"] for p in rejected.errors} == {"oops"}


def test_a_calendar_impossible_date_found_after_writing_leaves_no_file(tmp_path: Path) -> None:
    # 30/02 has the d/m/Y shape, so it is only caught once the dates are converted.
    with pytest.raises(UploadRejected) as caught:
        ingest(tmp_path, "Reference,Amount,Date\nA,1,28/02/2024\nB,2,30/02/2024\n")
    assert caught.value.reason == "bad_date"
    assert caught.value.errors == [
        {
            "row": 2,
            "column": "Date",
            "value": "30/02/2024",
            "message": "not a date in the format %d/%m/%Y (or yyyy-mm-dd)",
        }
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["upload.bin"]


def test_day_month_order_is_settled_by_a_value_deep_in_the_file(tmp_path: Path) -> None:
    lines = ["Reference,Amount,Date"] + [
        f"R{i},1.00,0{1 + i % 9}/0{1 + i % 7}/2024" for i in range(12_000)
    ]
    lines.append("LAST,1.00,25/12/2024")
    result = ingest(tmp_path, "\n".join(lines))
    assert result.detected_options["date_format"] == "%d/%m/%Y"
    assert result.max_date == "2024-12-25"
    assert result.row_count == 12_001


def test_ambiguous_dates_ask_for_the_format_with_examples(tmp_path: Path) -> None:
    with pytest.raises(UploadRejected) as caught:
        ingest(tmp_path, "Reference,Amount,Date\nA,1,01/02/2024\nB,2,03/04/2024\n")
    rejected = caught.value
    assert rejected.reason == "ambiguous_date"
    assert "options.date_format" in rejected.detail
    assert "01/02/2024" in rejected.detail
    assert rejected.to_problem()["date_formats"] == ["%d/%m/%Y", "%m/%d/%Y"]


def test_decimal_comma_is_detected_from_a_value_past_the_sample(tmp_path: Path) -> None:
    lines = ["Reference;Amount;Date"] + [f"R{i};1.000;2024-01-01" for i in range(11_000)]
    lines.append("LAST;12,50;2024-01-02")
    result = ingest(tmp_path, "\n".join(lines))
    assert result.detected_options["decimal"] == ","
    assert result.sums == {"": str(Decimal("1000") * 11_000 + Decimal("12.50")) + ""}


def test_tab_file_with_commas_in_text_is_sniffed_as_tab(tmp_path: Path) -> None:
    content = (
        "Ref\tAmount\tDate\tMemo\nA\t1.00\t2024-01-01\tone, two, three\nB\t2.00\t2024-01-02\ta,b\n"
    )
    result = ingest(tmp_path, content)
    assert result.detected_options["delimiter"] == "\t"
    assert [r[5] for r in rows(tmp_path)] == ["one, two, three", "a,b"]


def test_one_data_row_full_of_thousands_commas_keeps_the_semicolon(tmp_path: Path) -> None:
    # Under "," the only data row splits into 7 fields and the header into 1: a table needs
    # its header and a row of the same width, which only ";" gives (found by hypothesis).
    content = "Reference;Amount;Date\nR0;1,000,000,000,000,000,000.00;2024-01-01\n"
    result = ingest(tmp_path, content, options={"decimal": "."})
    assert result.detected_options["delimiter"] == ";"
    assert result.sums == {"": "1000000000000000000.00"}


def test_source_without_dates_when_mapping_says_so(tmp_path: Path) -> None:
    result = ingest(tmp_path, "Reference,Amount\nA,1.50\n", mapping={"date": None})
    assert result.mapping == {"key": "Reference", "amount": "Amount", "date": None}
    assert (result.min_date, result.max_date) == (None, None)
    assert rows(tmp_path) == [(1, "A", Decimal("1.50"), None, None, None)]


def test_debit_credit_columns_named_in_options(tmp_path: Path) -> None:
    content = "Ref,When,Out,In\nA,2024-01-01,10.00,\nB,2024-01-02,,2.5\nC,2024-01-03,0.00,1\n"
    result = ingest(
        tmp_path,
        content,
        options={"debit_column": "Out", "credit_column": "In"},
        mapping={"date": "When"},
    )
    assert [r[2] for r in rows(tmp_path)] == [Decimal("-10.00"), Decimal("2.50"), Decimal("1.00")]
    assert result.sums == {"": "-6.50"}
    # A debit and a credit on one row (DESIGN 15): refused, never netted silently.
    with pytest.raises(UploadRejected) as caught:
        ingest(
            tmp_path,
            content.replace("0.00,1", "1,1"),
            options={"debit_column": "Out", "credit_column": "In"},
            mapping={"date": "When"},
        )
    assert caught.value.errors[0]["message"] == "the row has both a debit and a credit"


def test_invalid_credit_is_refused_not_read_as_zero(tmp_path: Path) -> None:
    with pytest.raises(UploadRejected) as caught:
        ingest(tmp_path, "Reference,Date,Debit,Credit\nA,2024-01-01,,abc\n")
    assert caught.value.errors[0]["column"] == "Credit"


def test_empty_key_is_kept_as_empty_text(tmp_path: Path) -> None:
    ingest(tmp_path, "Reference,Amount,Date,Memo\n,1.00,2024-01-01,x\n")
    assert rows(tmp_path)[0][1] == ""


@pytest.mark.parametrize("encoding", ["utf-16", "cp1252", "latin-1"])
def test_encodings(tmp_path: Path, encoding: str) -> None:
    text = "Reference,Amount,Date,Memo\nA,1.00,2024-01-01,Déjà vu\n"
    result = ingest(tmp_path, text.encode(encoding), options={"encoding": encoding})
    assert rows(tmp_path)[0][5] == "Déjà vu"
    assert result.detected_options["encoding"] == encoding


def test_xlsx_sheet_by_number_and_zip_bomb_limit(tmp_path: Path) -> None:
    wb = Workbook()
    wb.active.append(["cover"])
    sheet = wb.create_sheet("Second")
    sheet.append(["Reference", "Amount", "Date"])
    sheet.append(["A", 0.1, "2024-01-01"])
    buffer = io.BytesIO()
    wb.save(buffer)
    result = ingest(tmp_path, buffer.getvalue(), "book.xlsx", options={"sheet": 2})
    assert result.detected_options["sheet"] == "Second"
    assert result.sums == {"": "0.10"}
    with pytest.raises(UploadRejected) as caught:
        ingest(
            tmp_path, buffer.getvalue(), "book.xlsx", limits=Limits(max_xlsx_expanded_bytes=1000)
        )
    assert caught.value.reason == "format"


def test_xlsx_value_beyond_the_header_is_refused(tmp_path: Path) -> None:
    wb = Workbook()
    wb.active.append(["Reference", "Amount", "Date"])
    for i in range(120):
        wb.active.append([f"R{i}", 1, "2024-01-01"])
    wb.active.append(["late", 1, "2024-01-01", None, "stray"])
    buffer = io.BytesIO()
    wb.save(buffer)
    with pytest.raises(UploadRejected) as caught:
        ingest(tmp_path, buffer.getvalue(), "book.xlsx")
    assert caught.value.reason == "format"
    assert caught.value.errors[0]["row"] == 121


def test_broken_xlsx_is_a_format_rejection(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("xl/workbook.xml", "<not-a-workbook")
    with pytest.raises(UploadRejected) as caught:
        ingest(tmp_path, buffer.getvalue(), "broken.xlsx")
    assert caught.value.reason == "format"


def test_long_values_are_shortened_in_problems(tmp_path: Path) -> None:
    with pytest.raises(UploadRejected) as caught:
        ingest(tmp_path, "Reference,Amount,Date\nA," + "9" * 5000 + "x,2024-01-01\n")
    assert len(caught.value.errors[0]["value"]) == 203


CSV_BITS = st.sampled_from(
    [
        ",",
        ";",
        "\t",
        "|",
        '"',
        "\n",
        "\r\n",
        " ",
        "1",
        "12.50",
        "(3,00)",
        "-",
        "EUR",
        "€",
        "2024-01-31",
        "31/12/2024",
        "01/02/2024",
        "Reference",
        "Amount",
        "Date",
        "x",
        "\ufeff",
        "é",
    ]
)


@given(content=st.binary(max_size=3000))
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_arbitrary_bytes_are_accepted_or_rejected_never_crash(
    content: bytes, tmp_path: Path
) -> None:
    for name in ("upload.csv", "upload.xlsx"):
        try:
            ingest(tmp_path, content, name)
        except UploadRejected as exc:
            assert exc.reason and exc.status == 422
        (tmp_path / "out.parquet").unlink(missing_ok=True)


@given(parts=st.lists(CSV_BITS, max_size=80), header=st.booleans())
@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_arbitrary_csv_like_text_never_crashes(
    parts: list[str], header: bool, tmp_path: Path
) -> None:
    text = ("Reference,Amount,Date\n" if header else "") + "".join(parts)
    try:
        result = ingest(tmp_path, text.encode("utf-8"))
    except UploadRejected as exc:
        assert exc.reason and exc.status == 422
        assert not (tmp_path / "out.parquet").exists()
    else:
        assert result.row_count == len(rows(tmp_path))
    (tmp_path / "out.parquet").unlink(missing_ok=True)


@pytest.mark.skipif(len(READERS) < 2, reason="python-calamine is not installed")
@pytest.mark.parametrize(
    ("name", "sheet"), [("statement.xlsx", None), ("serial_dates.xlsx", "Data")]
)
def test_both_xlsx_readers_give_the_same_table(name: str, sheet: str | None) -> None:
    tables = []
    for reader in READERS:
        xlsx = XlsxSheet(DATA / name, sheet=sheet, skip_rows=None, limits=Limits(), reader=reader)
        try:
            tables.append((xlsx.header, xlsx.skip_rows, xlsx.reader().read_all().to_pylist()))
        finally:
            xlsx.close()
    assert tables[0] == tables[1]
    assert len(tables[0][2]) >= 3


@given(
    flips=st.lists(
        st.tuples(st.integers(min_value=0, max_value=10**6), st.integers(0, 255)), max_size=6
    )
)
@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_corrupted_workbooks_are_rejected_never_crash(
    flips: list[tuple[int, int]], tmp_path: Path
) -> None:
    content = bytearray((DATA / "statement.xlsx").read_bytes())
    for position, value in flips:
        content[position % len(content)] = value
    try:
        ingest(tmp_path, bytes(content), "statement.xlsx")
    except UploadRejected as exc:
        assert exc.status == 422
    (tmp_path / "out.parquet").unlink(missing_ok=True)


@pytest.mark.parametrize(
    ("first", "rest"), [("\r\n", "\n"), ("\n", "\r\n")], ids=["crlf-then-lf", "lf-then-crlf"]
)
def test_line_endings_that_change_past_the_sample_are_read(
    tmp_path: Path, first: str, rest: str
) -> None:
    # DuckDB's reader fails on such a file; the sample alone (1 MiB) shows one ending.
    lines = [f"R{i:07d},{i}.25,2024-01-{1 + i % 28:02d}" for i in range(60_000)]
    head = first.join(["Reference,Amount,Date", *lines[:40_000]]) + first
    assert len(head) > dialect.SAMPLE_BYTES
    result = ingest(tmp_path, head + rest.join(lines[40_000:]) + rest)
    assert result.row_count == 60_000
    assert rows(tmp_path)[-1][:3] == (60_000, "R0059999", Decimal("59999.25"))


@pytest.mark.parametrize(
    ("data", "mixed"),
    [
        (b"a\r\nb\r\nc\r\n", False),
        (b"a\nb\nc\n", False),
        (b"a\r\nb\nc\r\n", True),
        (b"a\nb\r\nc\n", True),
        (b"abc\r\ndef\r\n", False),  # a CR and its LF in separate chunks is one CRLF
        (b"abc\rdef\n", False),  # a lone CR is no line ending, and one kind is no mix
        (b"abc\r\ndef\n", True),
    ],
)
def test_file_mixes_newlines_across_chunks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, data: bytes, mixed: bool
) -> None:
    path = tmp_path / "lines.csv"
    path.write_bytes(data)
    for size in (1, 2, 3, 4, 1024):
        monkeypatch.setattr(dialect, "CHUNK_BYTES", size)
        assert dialect.file_mixes_newlines(path) is mixed, size


def test_the_sample_is_read_with_the_collector_held_off_and_its_state_restored(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    text = "ref,amount,date\n" + "".join(f"R{i},{i}.50,2024-01-02\n" for i in range(2000))
    seen: list[bool] = []
    real = dialect.sample_records

    def spy(text: str, delimiter: str, truncated: bool) -> list[list[str]]:
        seen.append(gc.isenabled())
        return real(text, delimiter, truncated)

    monkeypatch.setattr(dialect, "sample_records", spy)
    assert gc.isenabled()
    layout = dialect.csv_layout(text, truncated=False, delimiter=None, skip_rows=None)
    assert (layout.delimiter, layout.header, layout.width) == (",", ["ref", "amount", "date"], 3)
    assert seen and not any(seen)
    assert gc.isenabled()
    # An error inside leaves the collector on; a caller that had it off finds it off.
    with pytest.raises(ZeroDivisionError), dialect.gc_paused():
        _ = 1 / 0
    assert gc.isenabled()
    gc.disable()
    try:
        with dialect.gc_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
