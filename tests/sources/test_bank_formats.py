"""The bank corpus (tests/data/banks/manifest.json) through ingest_file and through the HTTP API."""

# ruff: noqa: S608 - queries over the test's own temporary files

from __future__ import annotations

import io
import json
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest

from recon.extensions import db
from recon.sources.models import Source
from recon.sources.parsing import UploadRejected, ingest_file

BANKS = Path(__file__).parent.parent / "data" / "banks"
MANIFEST = json.loads((BANKS / "manifest.json").read_text(encoding="utf-8"))


def _id(entry: dict[str, Any]) -> str:
    extra = "+".join(sorted({*entry.get("options", {}), *entry.get("mapping", {})}))
    return entry["file"] + (f"[{extra}]" if extra else "")


def _rows(path: Path) -> list[dict[str, Any]]:
    relation = duckdb.sql(f"SELECT * FROM read_parquet('{path}') ORDER BY row")
    return [dict(zip(relation.columns, values, strict=True)) for values in relation.fetchall()]


def _check_statements(entry: dict[str, Any], statements: list[dict[str, Any]]) -> None:
    if "balanced" in entry:
        assert [s["balanced"] for s in statements] == entry["balanced"]
    if "statements" in entry:
        assert len(statements) == entry["statements"]
    for s in statements:
        if s["opening"] is not None and s["closing"] is not None:
            balanced = Decimal(s["opening"]) + Decimal(s["records_sum"]) == Decimal(s["closing"])
            assert s["balanced"] is balanced  # both figures are there to show the difference


@pytest.mark.parametrize("entry", MANIFEST["accepted"], ids=_id)
def test_bank_file_becomes_its_records(entry: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / "source.parquet"
    result = ingest_file(
        BANKS / entry["file"],
        out,
        filename=entry["file"],
        mapping=entry.get("mapping"),
        options=entry.get("options"),
        temp_dir=tmp_path,
    )
    rows = _rows(out)
    assert result.row_count == entry["rows"] == len(rows)
    assert result.sums == entry["sums"]
    written: dict[str, Decimal] = {}
    for r in rows:
        written[r["currency"] or ""] = written.get(r["currency"] or "", Decimal(0)) + r["amount"]
    assert {k: str(v) for k, v in written.items()} == entry["sums"]
    assert [r["row"] for r in rows] == list(range(1, len(rows) + 1))
    assert result.detected_options["format"] == entry["format"]
    assert result.has_key == entry.get("has_key", True)
    assert result.fields == entry.get("fields", [])
    assert len(result.skipped_lines) == entry.get("skipped", 0)
    if entry["format"] != "csv":
        _check_statements(entry, result.statements)
        assert result.statements and all(s["account"] for s in result.statements)
    if "row" in entry:
        got = rows[entry["row"]["row"] - 1]
        assert {k: str(got[k]) if got[k] is not None else None for k in entry["row"]} == {
            k: str(v) for k, v in entry["row"].items()
        }
    assert sorted(p.name for p in tmp_path.iterdir()) == ["source.parquet"]


@pytest.mark.parametrize("entry", MANIFEST["rejected"], ids=_id)
def test_bank_file_refused_says_why(entry: dict[str, Any], tmp_path: Path) -> None:
    with pytest.raises(UploadRejected) as caught:
        ingest_file(
            BANKS / entry["file"],
            tmp_path / "o.parquet",
            filename=entry["file"],
            options=entry.get("options"),
            temp_dir=tmp_path,
        )
    assert caught.value.reason == entry["reason"]
    assert entry["says"] in caught.value.detail
    assert list(tmp_path.iterdir()) == []


def test_entities_are_never_expanded(tmp_path: Path) -> None:
    for name in ("camt053_xxe.xml", "camt053_billion_laughs.xml"):
        with pytest.raises(UploadRejected) as caught:
            ingest_file(BANKS / name, tmp_path / "o.parquet", filename=name, temp_dir=tmp_path)
        body = json.dumps(caught.value.to_problem())
        assert "root:" not in body and "aaaaaaaaaa" not in body


def test_an_unsupported_format_names_what_recon_reads(tmp_path: Path) -> None:
    with pytest.raises(UploadRejected) as caught:
        ingest_file(BANKS.parent / "fake.pdf", tmp_path / "o.parquet", filename="x.pdf")
    for name in ("CSV", "XLSX", "MT940", "CAMT", "BAI2", "OFX"):
        assert name in caught.value.detail


def _alive_camt_elements() -> int:
    import gc

    gc.collect()
    return sum(
        1
        for o in gc.get_objects()
        if type(o).__name__ == "Element" and o.tag.startswith("{urn:iso:std:iso:20022")
    )


@pytest.mark.parametrize("reader, bound", [("read", 10_000), ("read_iterparse", 2_000)])
def test_a_long_camt_statement_streams_in_bounded_memory(
    tmp_path: Path, reader: str, bound: int
) -> None:
    # The whole statement is ~150,000 elements; alive at any time are at most one batch of
    # entries (the C path, BATCH_ENTRIES) or iterparse's read-ahead (a few dozen entries).
    from recon.sources.formats import camt
    from recon.sources.formats.statement import Statement

    head = (BANKS / "camt053_v02_batch.xml").read_text()
    entry = head[head.index("<Ntry>") : head.index("</Ntry>") + len("</Ntry>")]
    path = tmp_path / "long.xml"
    path.write_text(head.replace(entry, entry * 10_000))
    statements: list[Statement] = []
    count = alive = 0
    for count, _record in enumerate(getattr(camt, reader)(path, statements), start=1):
        if count == 9_000:
            alive = _alive_camt_elements()
    assert count == 10_000 + 3  # the batch entry gives two records
    assert 0 < alive < bound
    assert statements[0].closing is not None


def test_a_camt_document_with_a_namespace_prefix(tmp_path: Path) -> None:
    import re

    from recon.sources.formats import camt
    from recon.sources.formats.statement import Statement

    text = (BANKS / "camt053_v02_batch.xml").read_text()
    text = re.sub(r"<(/?)(\w+)", r"<\1c:\2", text).replace("<c:?xml", "<?xml")
    text = text.replace('xmlns="', 'xmlns:c="')
    path = tmp_path / "prefixed.xml"
    path.write_text(text)
    statements: list[Statement] = []
    records = list(camt.read(path, statements))
    assert [r.key for r in records] == ["BANKREF-001", "BANKREF-002", "BATCH-77-1", "BATCH-77-2"]
    assert statements[0].closing == Decimal("1302.25")


def test_the_c_cut_and_iterparse_read_every_camt_file_alike() -> None:
    from recon.sources.formats import camt
    from recon.sources.formats.statement import Statement

    for path in sorted(BANKS.glob("camt05*_v*.xml")):
        fast: list[Statement] = []
        slow: list[Statement] = []
        assert list(camt.read(path, fast)) == list(camt.read_iterparse(path, slow)), path.name
        assert fast == slow


def upload(user, pid, data: bytes, filename: str, **form):
    payload = {"name": filename, "file": (io.BytesIO(data), filename)}
    payload.update({k: json.dumps(v) for k, v in form.items()})
    return user.post(
        f"/api/projects/{pid}/sources", data=payload, content_type="multipart/form-data"
    )


@pytest.fixture
def project(analyst):
    return analyst.post("/api/projects", json={"name": "Bank files"}).get_json()["id"]


def test_every_bank_file_through_the_api(analyst, project):
    seen = set()
    for entry in MANIFEST["accepted"]:
        form = {k: entry[k] for k in ("mapping", "options") if k in entry}
        response = upload(
            analyst, project, (BANKS / entry["file"]).read_bytes(), entry["file"], **form
        )
        assert response.status_code == 201, (entry["file"], response.get_json())
        body = response.get_json()
        assert (body["row_count"], body["sums"], body["format"]) == (
            entry["rows"],
            entry["sums"],
            entry["format"],
        ), entry["file"]
        if entry["format"] != "csv":
            _check_statements(entry, body["statements"])
        again = analyst.get(f"/api/projects/{project}/sources/{body['id']}").get_json()
        assert again["statements"] == body["statements"]
        assert again["skipped_lines"] == body["skipped_lines"]
        seen.add(body["id"])
    assert db.session.query(Source).count() == len(seen) == len(MANIFEST["accepted"])


def test_an_unbalanced_statement_is_a_warning_with_both_figures(analyst, project):
    data = (BANKS / "camt053_v04_two_statements.xml").read_bytes()
    body = upload(analyst, project, data, "camt.xml").get_json()
    second = body["statements"][1]
    assert second == {
        "account": "0532013001",
        "id": "2024-03-04-002",
        "currency": "USD",
        "opening": "10.00",
        "closing": "20.00",
        "records_sum": "-25.00",
        "balanced": False,
    }
    assert body["row_count"] == 3  # the records are still what the bank sent


@pytest.mark.parametrize("amount", ["1E+40", "-2.5E+25", "1e21"])
def test_an_amount_in_exponent_form_past_the_digits_is_refused_with_nothing_stored(
    analyst, project, amount, tmp_path
):
    # Decimal reads "1E+40" as one digit with an exponent: its integer digits are
    # the exponent's, and the database column can not hold them.
    data = (BANKS / "camt053_v08_batch_tx_amounts.xml").read_text()
    data = data.replace('<Amt Ccy="EUR">5.00</Amt>', f'<Amt Ccy="EUR">{amount}</Amt>')
    response = upload(analyst, project, data.encode(), "camt.xml")
    assert response.status_code == 422, response.get_json()
    body = response.get_json()
    assert body["errors"][0]["row"] == 3 and "too many digits" in body["errors"][0]["message"]
    assert db.session.query(Source).count() == 0


def _camt_with(opening: str, closing: str, amounts: tuple[str, str]) -> bytes:
    data = (BANKS / "camt053_v08_batch_tx_amounts.xml").read_text()
    for old, new in (
        ('<Amt Ccy="EUR">100.00</Amt>', opening),
        ('<Amt Ccy="EUR">125.00</Amt>', closing),
        ('<Amt Ccy="EUR">10.00</Amt>', amounts[0]),
        ('<Amt Ccy="EUR">20.00</Amt>', amounts[1]),
        ('<Amt Ccy="EUR">5.00</Amt>', "0"),
    ):
        data = data.replace(old, f'<Amt Ccy="EUR">{new}</Amt>')
    return data.encode()


@pytest.mark.parametrize(
    ("balance", "why"),
    [
        ("1E+40", "too many digits"),
        ("NaN", "is not a number"),
        ("-Infinity", "is not a number"),
        ("1.0000000000000000001", "more than 18 decimal places"),
    ],
)
def test_a_balance_recon_can_not_hold_is_refused_with_nothing_stored(
    analyst, project, balance, why
):
    response = upload(analyst, project, _camt_with(balance, "0", ("1", "2")), "camt.xml")
    assert response.status_code == 422, response.get_json()
    error = response.get_json()["errors"][0]
    assert error["column"] == "opening balance" and why in error["message"]
    assert db.session.query(Source).count() == 0


def test_sums_and_balances_of_38_digit_amounts_are_exact(analyst, project):
    # The default decimal context keeps 28 digits: it rounded the sum, and the
    # statement came out unbalanced.
    amounts = ("12345678901234567890.123456789012345678", "1.000000000000000001")
    total = "12345678901234567891.123456789012345679"
    response = upload(analyst, project, _camt_with("0", total, amounts), "camt.xml")
    assert response.status_code == 201, response.get_json()
    (statement,) = response.get_json()["statements"]
    assert statement["records_sum"] == total and statement["closing"] == total
    assert statement["balanced"] is True
    assert response.get_json()["sums"] == {"EUR": total}


def test_an_mt940_amount_decimal_can_not_read_is_refused(analyst, project):
    data = (BANKS / "mt940_jejik_ing.sta").read_text(encoding="latin-1")
    data = re.sub(r"(:61:\d{6}(?:\d{4})?[CD])[\d,]+", r"\g<1>1,2,3", data, count=1)
    response = upload(analyst, project, data.encode("latin-1"), "ing.sta")
    assert response.status_code == 422, response.get_json()
    assert (
        "could not be parsed: one of its amounts is not a number" in response.get_json()["detail"]
    )
    assert db.session.query(Source).count() == 0


HOSTILE_AMOUNTS = ("1E+40", "NaN", "-Infinity", "1e-30", "9" * 41, "", "1,2,3", "--5", "0x10")
# Where each format writes an amount (the first one or two of the file are replaced).
AMOUNT_SPOTS = {
    "camt053_v04_two_statements.xml": r'(<Amt Ccy="\w+">)[^<]*(?=</Amt>)',
    "mt940_jejik_abnamro.sta": r"(:61:\d{6}(?:\d{4})?R?[CD])[\d,]+",
    "ofx_v1_checking.ofx": r"(<TRNAMT>)[^<\r\n]*",
    "bai2_svb_us_example.bai2": r"(\n16,\d+,)\d*",
}


# ofxtools warns of the tags it skips in a mangled file; the file is refused all the same.
@pytest.mark.filterwarnings("ignore::ofxtools.models.base.UnknownTagWarning")
def test_no_amount_in_any_statement_format_ends_other_than_stored_or_refused(tmp_path: Path):
    refused = 0
    for name, spot in AMOUNT_SPOTS.items():
        text = (BANKS / name).read_bytes().decode("latin-1")
        for amount in HOSTILE_AMOUNTS:
            src = tmp_path / f"hostile-{name}"
            src.write_bytes(
                re.sub(spot, lambda m, a=amount: m.group(1) + a, text, count=2).encode("latin-1")
            )
            out = tmp_path / "out.parquet"
            out.unlink(missing_ok=True)
            try:
                ingest_file(src, out, filename=name, temp_dir=tmp_path)
            except UploadRejected as exc:
                refused += 1
                assert not out.exists()
                assert "decimal." not in str(exc), str(exc)  # a sentence, not a signal's name
    assert refused >= len(AMOUNT_SPOTS) * 4  # exponents past the digits, NaN, infinity, 41 nines


def test_statement_files_refuse_options_and_a_mapping(analyst, project):
    data = (BANKS / "mt940_jejik_ing.sta").read_bytes()
    bad = upload(analyst, project, data, "ing.sta", options={"delimiter": ";"})
    assert bad.status_code == 422 and bad.get_json()["errors"][0]["column"] == "delimiter"
    bad = upload(analyst, project, data, "ing.sta", mapping={"key": "x"})
    assert bad.status_code == 422 and "mapping does not apply" in bad.get_json()["detail"]
    assert db.session.query(Source).count() == 0


def test_the_command_line_reads_statement_files(tmp_path: Path, capsys) -> None:
    from recon.engine.cli import main

    ledger = tmp_path / "ledger.csv"
    ledger.write_text(
        "Reference,Amount,Date\nBANKREF-001,250.00,2024-03-01\nBANKREF-002,-47.75,2024-03-01\n"
    )
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps({"passes": [{"name": "exact", "match_on": ["key"]}]}))
    status = main(
        [
            "reconcile",
            str(BANKS / "camt053_v02_batch.xml"),
            str(ledger),
            "--rules",
            str(rules),
            "--out",
            str(tmp_path / "out"),
        ]
    )
    assert status == 0
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["left"]["rows"] == 4
    assert summary["left"]["by_status"]["matched"]["rows"] == 2
    assert "matched" in capsys.readouterr().out


def test_the_statement_writer_numbers_problems_by_record_and_keeps_the_largest_scale() -> None:
    from datetime import date

    from recon.sources.formats.statement import Record, _batches, _Checker
    from recon.sources.options import Limits

    day = date(2024, 1, 2)
    good = Record(0, "A", Decimal("1.25"), "EUR", day, None)
    records = [good] * 5 + [
        Record(0, "B", None, "EUR", day, None),
        Record(0, "C", Decimal("1E+40"), "XYZ", None, None),
        Record(0, "D", Decimal("0.1234"), "EUR", None, day),
    ]
    checker, sums = _Checker(Limits()), {}
    (batch,) = _batches(iter(records), checker, sums)
    assert checker.total == 4
    assert [p["row"] for p in checker.problems] == [6, 7, 7, 7]
    assert [p["column"] for p in checker.problems] == ["amount", "amount", "currency", "date"]
    assert checker.scale == 4
    assert batch.column("row").to_pylist() == list(range(1, 9))
    assert batch.column("value_date").to_pylist()[-1] == "2024-01-02"
