"""Every list page offers its export (CSV and XLSX): the job (records, pairs, exceptions),
the results with their filters, the exception queue; the files open with the rows shown."""

from __future__ import annotations

import csv
import html as html_lib
import io
import re

import openpyxl
import pytest

from tests.review.helpers import build_world
from tests.workspace.helpers import signed_in


@pytest.fixture
def world(app, factory, as_user):
    return build_world(app, factory, as_user)


@pytest.fixture
def page(world, factory):
    return signed_in(world.app, factory, world.viewer.user)


def links(html: str) -> dict[str, str]:
    """The page's export links by their ``data-export`` name."""
    found = re.findall(r'<a\b[^>]*?href="([^"]+)"[^>]*data-export="([^"]+)"', html)
    return {name: html_lib.unescape(href) for href, name in found}


def sheet(response) -> list[tuple]:
    book = openpyxl.load_workbook(io.BytesIO(response.get_data()), read_only=True)
    return list(book.worksheets[0].iter_rows(values_only=True))


def test_the_job_page_exports_records_pairs_and_exceptions_in_both_formats(world, page):
    html = page.get(f"/projects/{world.pid}/jobs/{world.job.id}").get_data(as_text=True)
    found = links(html)
    assert set(found) == {
        f"{view}-{fmt}" for view in ("records", "pairs", "exceptions") for fmt in ("csv", "xlsx")
    }
    records = page.get(found["records-csv"])
    rows = list(csv.reader(io.StringIO(records.get_data(as_text=True))))
    assert records.mimetype == "text/csv" and len(rows) == 1 + 10  # five records a side
    book = page.get(found["records-xlsx"])
    assert book.headers["Content-Disposition"].endswith('-records-all.xlsx"')
    assert len(sheet(book)) == len(rows)
    exceptions = sheet(page.get(found["exceptions-xlsx"]))
    assert exceptions[0][:6] == ("id", "job_id", "side", "row", "kind", "status")
    assert len(exceptions) == 1 + 8  # the world's eight open exceptions
    pairs = list(csv.DictReader(io.StringIO(page.get(found["pairs-csv"]).get_data(as_text=True))))
    assert [(p["status"], p["difference"]) for p in pairs] == [
        ("matched", "0.00"),
        ("break", "5.00"),
        ("suggested", "0.00"),
    ]
    assert len(sheet(page.get(found["pairs-xlsx"]))) == 1 + 3


def test_the_results_export_keeps_the_pages_filters_and_view(world, page):
    url = f"/projects/{world.pid}/jobs/{world.job.id}/results?status=break&view=engine&page=1"
    found = links(page.get(url).get_data(as_text=True))
    assert "status=break" in found["records-csv"] and "state=engine" in found["records-csv"]
    assert "view=" not in found["records-csv"]
    rows = page.get(found["records-csv"]).get_data(as_text=True).strip().splitlines()
    assert len(rows) == 3  # the header and the break's two records, as on the page
    assert len(sheet(page.get(found["records-xlsx"]))) == 3


def test_the_queue_exports_its_list_with_its_filters(world, page):
    html = page.get(f"/projects/{world.pid}/exceptions?unresolved=true&status=open").get_data(
        as_text=True
    )
    assert "Export this list, every page, as filtered and sorted" in html
    found = links(html)
    assert (
        "status=open" in found["exceptions-csv"]
        and "/exceptions/export?" in found["exceptions-csv"]
    )
    rows = list(csv.reader(io.StringIO(page.get(found["exceptions-csv"]).get_data(as_text=True))))
    assert len(rows) == 1 + 8 and all("open" in r for r in rows[1:])
    assert len(sheet(page.get(found["exceptions-xlsx"]))) == 1 + 8


def test_a_bad_export_request_is_a_clear_page_not_a_file(world, page):
    base = f"/projects/{world.pid}/jobs/{world.job.id}/export"
    wrong = page.get(f"{base}?format=pdf")
    assert wrong.status_code == 422 and "<strong>format</strong>: Must be one of" in wrong.get_data(
        as_text=True
    )
    assert "attachment" not in wrong.headers.get("Content-Disposition", "")
    status = page.get(f"{base}?view=exceptions&status=matched")
    assert status.status_code == 422
    assert page.get(f"/projects/{world.pid}/jobs/999999/export").status_code == 404
