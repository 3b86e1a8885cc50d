"""Exports in CSV and XLSX, three views, current state, formula-safe."""

from __future__ import annotations

import csv
import io

import openpyxl
import pytest

from tests.review.test_state import manual_match

EVIL = '=HYPERLINK("http://evil.example","click")'


def get(world, **params):
    query = "&".join(f"{k}={v}" for k, v in params.items())
    response = world.viewer.get(world.url(f"/jobs/{world.job.id}/export?{query}"))
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    return response


def rows_csv(response):
    return list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))


def rows_xlsx(response):
    book = openpyxl.load_workbook(io.BytesIO(response.get_data()), read_only=False)
    sheet = book.worksheets[0]
    values = list(sheet.iter_rows(values_only=True))
    header = values[0]
    return [dict(zip(header, row, strict=True)) for row in values[1:]], sheet


def test_records_in_both_formats_show_the_current_state_and_the_sources_columns(world):
    manual_match(world, world.editor, [3], [4, 5])
    as_csv = rows_csv(get(world, view="records"))
    as_xlsx, _ = rows_xlsx(get(world, view="records", format="xlsx"))
    assert len(as_csv) == len(as_xlsx) == 10
    by_key = {(r["side"], int(r["row"])): r for r in as_csv}
    assert by_key[("left", 3)]["status"] == "matched" and by_key[("left", 3)]["pass"] == "manual"
    assert by_key[("left", 3)]["decided_by"] == "person"
    xlsx_by_key = {(r["side"], int(r["row"])): r for r in as_xlsx}
    assert xlsx_by_key[("right", 4)]["status"] == "matched"
    assert xlsx_by_key[("right", 4)]["amount"] == 45.5  # a number, to sum in the sheet
    engine = {(r["side"], int(r["row"])): r for r in rows_csv(get(world, state="engine"))}
    assert engine[("left", 3)]["status"] == "unmatched"


def test_pairs_put_both_sides_and_the_difference_on_one_row(world):
    manual_match(world, world.editor, [3], [4, 5])
    pairs = rows_csv(get(world, view="pairs"))
    by_match = {(int(p["match_id"]), p["status"]): p for p in pairs}
    manual = by_match[(3, "matched")]
    assert (manual["pass"], manual["left_keys"], manual["right_keys"]) == (
        "manual",
        "INV-3",
        "INV-8; INV-9",
    )
    assert (manual["left_amount"], manual["right_amount"], manual["difference"]) == (
        "75.50",
        "75.50",
        "0.00",
    )
    brk = by_match[(2, "break")]
    assert (brk["left_amount"], brk["right_amount"], brk["difference"]) == (
        "250.00",
        "245.00",
        "5.00",
    )
    assert brk["diff_fields"] == "amount"
    xlsx, _ = rows_xlsx(get(world, view="pairs", format="xlsx"))
    assert len(xlsx) == len(pairs)


def test_exceptions_carry_status_assignee_reason_note_and_age(world):
    eid = world.eid("left", 5)
    world.editor.patch(
        world.url(f"/exceptions/{eid}"),
        json={"status": "resolved", "reason_code": "timing_difference", "note": "April"},
    )
    rows = rows_csv(get(world, view="exceptions"))
    assert len(rows) == 8
    row = next(r for r in rows if int(r["id"]) == eid)
    assert (row["status"], row["reason_code"], row["note"], row["age_days"]) == (
        "resolved",
        "timing_difference",
        "April",
        "0",
    )
    only = rows_csv(get(world, view="exceptions", status="resolved"))
    assert [int(r["id"]) for r in only] == [eid]


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_text_a_spreadsheet_would_run_is_never_a_formula(app, factory, as_user, fmt):
    from recon.projects.models import ProjectRole

    owner = as_user()
    project = factory.project(members={owner.user: ProjectRole.owner})
    left = factory.source(
        project,
        owner.user,
        csv="Reference,Amount,Date,Description,Memo\n"
        + '"'
        + EVIL.replace('"', '""')
        + '",-12.50,2024-01-01,"@SUM(A1)",+1+1\n',
        name="l",
    )
    right = factory.source(project, owner.user, csv="Reference,Amount,Date\nB,1.00,2024-01-01\n")
    job = factory.job(project, left, right)
    response = owner.get(f"/api/projects/{project.id}/jobs/{job.id}/export?format={fmt}")
    assert response.status_code == 200
    if fmt == "csv":
        rows = rows_csv(response)
        evil = next(r for r in rows if r["side"] == "left")
        assert evil["key"] == "'" + EVIL and evil["description"] == "'@SUM(A1)"
        assert evil["amount"] == "-12.50"  # numbers stay numbers
        assert evil["left.Memo"] == "'+1+1"  # the source's own columns, beside the canonical
    else:
        rows, sheet = rows_xlsx(response)
        assert all(cell.data_type != "f" for row in sheet.iter_rows() for cell in row)
        evil = next(r for r in rows if r["side"] == "left")
        assert evil["key"] == EVIL and evil["amount"] == -12.5
        assert evil["left.Memo"] == "+1+1"


def test_bad_export_arguments_are_422(world):
    for query in ("format=pdf", "view=everything", "view=exceptions&status=matched", "status=open"):
        response = world.viewer.get(world.url(f"/jobs/{world.job.id}/export?{query}"))
        assert response.status_code == 422, query
