"""Hostile uploads (issue 11): each is a clear 422 that stores nothing, never a crash or a 500."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest
from openpyxl import Workbook

from recon.extensions import db
from recon.sources.models import Source
from recon.sources.parsing import Limits, UploadRejected, ingest_file

CSV = b"Reference,Amount,Date\nA-1,10.00,2024-01-02\nA-2,-2.50,2024-01-03\n"


def upload(user, pid, data=CSV, name="Bank", filename="bank.csv", **form):
    payload = {"name": name, "file": (io.BytesIO(data), filename)}
    payload.update({k: json.dumps(v) for k, v in form.items()})
    return user.post(
        f"/api/projects/{pid}/sources", data=payload, content_type="multipart/form-data"
    )


def stored_files(app) -> list[Path]:
    root = Path(app.config["RECON_DATA_DIR"])
    return sorted(p for p in root.rglob("*") if p.is_file())


@pytest.fixture
def project(analyst):
    return analyst.post("/api/projects", json={"name": "Hostile uploads"}).get_json()["id"]


def _refused(response, app, before) -> dict:
    assert response.status_code == 422, response.get_json()
    assert response.mimetype == "application/problem+json"
    assert db.session.query(Source).count() == 0
    assert stored_files(app) == before
    return response.get_json()


def far_cell_xlsx(path: Path) -> Path:
    """Headers in A1:C1, one data row, and one cell at XFD1048576 (the last cell Excel has)."""
    wb = Workbook()
    ws = wb.active
    ws.append(["Reference", "Amount", "Date"])
    ws.append(["A-1", 10, "2024-01-02"])
    ws["XFD1048576"] = "x"
    wb.save(path)
    return path


def test_a_cell_at_xfd1048576_is_refused_before_any_reader_allocates_the_sheet(
    analyst, project, app, tmp_path
):
    data = far_cell_xlsx(tmp_path / "far.xlsx").read_bytes()
    assert len(data) < 10_000  # a tiny file that used to abort the web process
    before = stored_files(app)
    body = _refused(upload(analyst, project, data, filename="far.xlsx"), app, before)
    assert body["reason"] == "too_many_columns"
    assert "16384" in body["detail"] and "500" in body["detail"]


def test_a_sheet_past_the_row_or_cell_limit_is_refused_from_its_xml(tmp_path):
    wb = Workbook()
    ws = wb.active
    ws.append(["Reference", "Amount", "Date"])
    ws["A5000"] = "late"
    path = tmp_path / "tall.xlsx"
    wb.save(path)
    with pytest.raises(UploadRejected) as caught:
        ingest_file(
            path, tmp_path / "o.parquet", filename="t.xlsx", limits=Limits(max_xlsx_rows=4000)
        )
    assert "row 5000" in caught.value.detail
    with pytest.raises(UploadRejected) as caught:
        ingest_file(
            path, tmp_path / "o.parquet", filename="t.xlsx", limits=Limits(max_xlsx_cells=10_000)
        )
    assert "cells" in caught.value.detail
    assert not (tmp_path / "o.parquet").exists()


def _with_shared_strings(path: Path, count: int) -> Path:
    wb = Workbook()
    wb.active.append(["Reference", "Amount", "Date"])
    wb.active.append(["A-1", 1, "2024-01-02"])
    plain = path.with_suffix(".plain.xlsx")
    wb.save(plain)
    items = "".join(f"<si><t>s{i}</t></si>" for i in range(count))
    sst = (
        '<?xml version="1.0" encoding="UTF-8"?><sst xmlns="http://schemas.openxmlformats.org/'
        f'spreadsheetml/2006/main" count="{count}" uniqueCount="{count}">{items}</sst>'
    )
    with zipfile.ZipFile(plain) as src, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as out:
        for info in src.infolist():
            if info.filename != "xl/sharedStrings.xml":
                out.writestr(info, src.read(info))
        out.writestr("xl/sharedStrings.xml", sst)
    return path


def test_huge_shared_strings_are_refused_by_count_and_by_size(tmp_path):
    path = _with_shared_strings(tmp_path / "sst.xlsx", 2_000)
    with pytest.raises(UploadRejected) as caught:
        ingest_file(
            path,
            tmp_path / "o.parquet",
            filename="s.xlsx",
            limits=Limits(max_xlsx_shared_strings=1_000),
        )
    assert "more than 1000 shared strings" in caught.value.detail
    with pytest.raises(UploadRejected) as caught:
        ingest_file(
            path,
            tmp_path / "o.parquet",
            filename="s.xlsx",
            limits=Limits(max_xlsx_shared_strings_bytes=4_096),
        )
    assert "shared strings expand to" in caught.value.detail
    # Within the limits the same workbook reads.
    assert ingest_file(path, tmp_path / "o.parquet", filename="s.xlsx").row_count == 1


def test_a_dtd_in_a_sheet_is_refused(tmp_path):
    path = _with_shared_strings(tmp_path / "sst.xlsx", 3)
    bomb = (
        '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY l2 "&lol;&lol;">]>'
        '<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><si><t>&l2;</t></si></sst>'
    )
    evil = tmp_path / "evil.xlsx"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(evil, "w") as out:
        for info in src.infolist():
            data = bomb if info.filename == "xl/sharedStrings.xml" else src.read(info)
            out.writestr(info.filename, data)
    with pytest.raises(UploadRejected) as caught:
        ingest_file(evil, tmp_path / "o.parquet", filename="e.xlsx")
    assert "DTD" in caught.value.detail


def test_encoding_utf16_on_a_utf8_file_names_the_encoding_it_reads_as(analyst, project, app):
    before = stored_files(app)
    # An even byte count: decoding it as UTF-16 used to give lone surrogates and a 500.
    data = "Reference,Amount,Date\nÄ-1,10.00,2024-01-02\nB-2,2.50,2024-01-03\n".encode()
    assert len(data) % 2 == 0
    body = _refused(upload(analyst, project, data, options={"encoding": "utf-16"}), app, before)
    assert body["reason"] == "encoding"
    assert "utf-8" in body["detail"] and "UTF-16" in body["detail"]
    # The same file as real UTF-16 (with its BOM) is read.
    utf16 = data.decode().encode("utf-16")
    ok = upload(analyst, project, utf16, options={"encoding": "utf-16"})
    assert ok.status_code == 201, ok.get_json()
    assert ok.get_json()["sums"] == {"": "12.50"}


@pytest.mark.parametrize(
    "name, filename, field",
    [
        ("Bank\x00March", "bank.csv", "name"),
        ("Bank\u202eMarch", "bank.csv", "name"),
        ("Bank\x07", "bank.csv", "name"),
        ("Bank", "bank\u202etxt.exe", "file"),
        ("Bank", "bank\x1b[31m.csv", "file"),
    ],
)
def test_control_and_bidi_characters_in_names_and_file_names(
    analyst, project, app, name, filename, field
):
    before = stored_files(app)
    body = _refused(upload(analyst, project, name=name, filename=filename), app, before)
    assert [e["field"] for e in body["errors"]] == [field]
    assert "character" in body["errors"][0]["message"]


def test_a_nul_in_the_file_name_is_refused(analyst, project, app):
    before = stored_files(app)
    body = _refused(upload(analyst, project, filename="bank\x00.csv"), app, before)
    assert body["errors"][0]["field"] == "file"


def test_two_fields_mapped_to_one_column(analyst, project, app):
    before = stored_files(app)
    mapping = {"key": "Reference", "description": "Reference", "amount": "Amount", "date": "Date"}
    body = _refused(upload(analyst, project, mapping=mapping), app, before)
    assert body["reason"] == "bad_options"
    assert "'Reference'" in body["detail"] and "key and description" in body["detail"]


def test_sheet_on_a_csv_and_delimiter_on_an_xlsx(analyst, project, app, tmp_path):
    before = stored_files(app)
    body = _refused(upload(analyst, project, options={"sheet": "Sheet1"}), app, before)
    assert body["errors"][0]["column"] == "sheet"
    assert "XLSX" in body["detail"] and "CSV" in body["detail"]
    wb = Workbook()
    wb.active.append(["Reference", "Amount", "Date"])
    wb.active.append(["A", 1, "2024-01-02"])
    wb.save(tmp_path / "s.xlsx")
    xlsx = (tmp_path / "s.xlsx").read_bytes()
    body = _refused(
        upload(analyst, project, xlsx, filename="s.xlsx", options={"delimiter": ";"}), app, before
    )
    assert body["errors"][0]["column"] == "delimiter"


@pytest.mark.parametrize("fmt", ["%H:%M", "%%d", "%Y", "%m/%d", "%A"])
def test_a_date_format_without_a_whole_date_is_refused(analyst, project, app, fmt):
    before = stored_files(app)
    body = _refused(upload(analyst, project, options={"date_format": fmt}), app, before)
    assert body["reason"] == "bad_options"
    assert body["errors"][0]["column"] == "date_format"
    assert "year, a month and a day" in body["detail"]


def test_date_formats_with_a_whole_date_still_work(analyst, project):
    data = b"Reference,Amount,Date\nA,1.00,2024-032\nB,2.00,2024-033\n"
    response = upload(analyst, project, data, options={"date_format": "%Y-%j"})
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["max_date"] == "2024-02-02"
