"""An accountant's day in the browser, past the journey: every page clean for axe-core on a
desktop and a phone; a break matched by hand from the queue with a write-off that waits
for a second person, who approves it; exports downloaded from the pages that list them."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path
from typing import Any

import openpyxl
import pytest
import requests
from playwright.sync_api import expect

from tests.workspace.conftest import Browsing, Server, _watch

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("browser")]
CHECKER = ("checker", "checker password long enough")


def api(server: Server, method: str, path: str, **kw: Any) -> Any:
    token = requests.post(
        f"{server.base}/api/auth/login",
        json={"username": "admin", "password": server.password},
        timeout=10,
    ).json()["access_token"]
    response = requests.request(
        method,
        f"{server.base}/api{path}",
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
        **kw,
    )
    assert response.status_code < 300, response.text
    return response.json() if response.content else None


def workbook_rows(path: Any) -> list[tuple]:
    # A download has no file extension, which openpyxl wants: read the bytes.
    book = openpyxl.load_workbook(io.BytesIO(path.read_bytes()), read_only=True)
    return list(book.worksheets[0].iter_rows(values_only=True))


def pages(server: Server) -> dict[str, str]:
    pid, jid = server.demo_project, server.demo_job
    return {
        "projects": "/",
        "project": f"/projects/{pid}",
        "upload": f"/projects/{pid}/upload",
        "rules": f"/projects/{pid}/rules?ruleset=1",
        "job": f"/projects/{pid}/jobs/{jid}",
        "results": f"/projects/{pid}/jobs/{jid}/results?status=break",
        "exceptions": f"/projects/{pid}/exceptions?unresolved=true&kind=suggested",
        "manual-match": f"/projects/{pid}/jobs/{jid}/match",
        "approvals": f"/projects/{pid}/approvals",
        "analytics": f"/projects/{pid}/analytics",
        "audit": f"/projects/{pid}/audit",
        "source": f"/projects/{pid}/sources/1",
    }


@pytest.mark.parametrize(
    ("width", "height", "device"), [(1280, 800, "desktop"), (390, 844, "phone")]
)
def test_every_page_is_clean_for_axe_core(browser, server, width, height, device) -> None:
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    watch = _watch(context, page, server.base.split("//", 1)[1])
    b = Browsing(page, watch, server)
    try:
        page.goto(b.url("/login"))
        assert b.axe() == [], "login"
        b.shot(f"page-login-{device}")
        b.sign_in()
        for name, path in pages(server).items():
            page.goto(b.url(path))
            assert page.locator("h1").count() == 1, name
            assert b.axe() == [], name
            if device == "phone":  # only tables scroll sideways: the page fits the screen
                assert page.evaluate("document.documentElement.scrollWidth") <= width, name
            b.shot(f"page-{name}-{device}")
        if device == "desktop":  # the README's two pictures, one screen each
            page.goto(b.url(pages(server)["job"]))
            b.shot("readme-job", full_page=False)
            page.goto(b.url(f"/projects/{server.demo_project}/exceptions?kind=break&sort=largest"))
            b.shot("readme-exceptions", full_page=False)
        page.goto(b.url(pages(server)["exceptions"]))
        page.keyboard.press("?")
        expect(page.locator("#shortcuts")).to_be_visible()
        assert "match by hand" in page.inner_text("#shortcuts")
        assert b.axe() == [], "shortcuts"
        b.shot(f"page-shortcuts-{device}", full_page=False)
        watch.check()
    finally:
        context.close()


def test_a_break_matched_by_hand_waits_for_a_second_person(browsing: Browsing, browser) -> None:
    b, page, server = browsing, browsing.page, browsing.server
    pid = server.demo_project
    user = api(server, "POST", "/users", json={"username": CHECKER[0], "password": CHECKER[1]})
    api(server, "POST", f"/projects/{pid}/members", json={"user_id": user["id"], "role": "editor"})
    api(server, "PATCH", f"/projects/{pid}/settings", json={"require_approval": "always"})
    try:
        b.sign_in()
        page.goto(b.url(f"/projects/{pid}/exceptions?unresolved=true&kind=break&sort=largest"))
        key = page.inner_text("#detail table.compare tbody tr:first-child td:nth-child(2)")
        page.keyboard.press("h")  # match by hand: this break's two records, ticked
        page.wait_for_selector("#balance [data-difference]")
        assert page.locator("input[name=left_rows]:checked").count() == 1
        assert page.locator("input[name=right_rows]:checked").count() == 1
        ticked = page.locator("tr:has(input[name=left_rows]:checked)").inner_text()
        assert key in ticked
        difference = page.get_attribute("#balance [data-difference]", "data-difference")
        assert difference not in ("0", "0.00")
        assert "needs a write-off reason" in page.inner_text("#balance")
        b.shot("work-01-break-matched-by-hand")
        assert b.axe() == []
        page.select_option("#write-off", "written_off")
        page.click("button:has-text('Match the picked records')")
        made = page.locator("#manual-area .ok")
        expect(made).to_contain_text("Matched 1 left and 1 right record(s), writing off")
        page.click("nav.tabs >> text=Approvals")
        expect(page.locator("[data-waiting]")).to_have_text(
            "0 waiting for you · 1 of yours waiting for someone else."
        )
        assert "waiting for another editor or owner" in page.inner_text("#approvals")
        b.shot("work-02-approvals-of-the-maker")

        # The checker signs in elsewhere and approves it with a note.
        other = browser.new_context(viewport={"width": 1280, "height": 800})
        try:
            checker = Browsing(other.new_page(), b.watch, server)
            checker.sign_in(*CHECKER)
            checker.page.goto(checker.url(f"/projects/{pid}/approvals"))
            expect(checker.page.locator("[data-waiting]")).to_have_text("1 waiting for you.")
            row = checker.page.locator("tr[data-approval]")
            assert "written_off" in row.inner_text() and "admin" in row.inner_text()
            assert checker.axe() == []
            checker.shot("work-03-approvals-of-the-checker")
            row.locator("input[name=note]").fill("statement checked")
            row.locator("button:has-text('Approve')").click()
            expect(checker.page.locator("#approvals .ok")).to_contain_text("approved")
            expect(checker.page.locator("#approvals")).to_contain_text("Nothing waiting.")
        finally:
            other.close()
    finally:
        api(server, "PATCH", f"/projects/{pid}/settings", json={"require_approval": "never"})


def test_exports_download_from_the_pages_that_list_them(browsing: Browsing) -> None:
    b, page, server = browsing, browsing.page, browsing.server
    pid, jid = server.demo_project, server.demo_job
    b.sign_in()
    page.goto(b.url(f"/projects/{pid}/jobs/{jid}/results?status=break"))
    total = int(page.inner_text("#results .pager span").split()[0])
    with page.expect_download() as download:
        page.click("[data-export=records-csv]")
    rows = list(csv.DictReader(io.StringIO(download.value.path().read_text())))
    assert len(rows) == total and {r["status"] for r in rows} == {"break"}
    page.goto(b.url(f"/projects/{pid}/exceptions?unresolved=true"))
    with page.expect_download() as download:
        page.click("[data-export=exceptions-xlsx]")
    assert download.value.suggested_filename.endswith(".xlsx")
    values = workbook_rows(download.value.path())
    assert values[0][:6] == ("id", "job_id", "side", "row", "kind", "status") and len(values) > 100
    page.goto(b.url(f"/projects/{pid}/jobs/{jid}"))
    with page.expect_download() as download:
        page.click("[data-export=pairs-xlsx]")
    pairs = workbook_rows(download.value.path())
    assert "difference" in pairs[0] and len(pairs) > 100


def test_the_keyboard_works_the_queue_without_the_mouse(browsing: Browsing) -> None:
    b, page, server = browsing, browsing.page, browsing.server
    pid = server.demo_project
    b.sign_in()
    detail = page.locator("#detail article")
    # Reject a suggestion with x: it leaves the queue and the next one is selected.
    page.goto(b.url(f"/projects/{pid}/exceptions?unresolved=true&kind=suggested&sort=smallest"))
    rejected = detail.get_attribute("data-exception")
    page.keyboard.press("x")
    expect(detail).not_to_have_attribute("data-exception", rejected)
    assert page.locator(f"tr[data-item] input[value='{rejected}']").count() == 0
    # Resolve a break: r goes to the reason, an arrow picks one, Tab to the note, Enter sends.
    page.goto(b.url(f"/projects/{pid}/exceptions?unresolved=true&kind=break&sort=smallest"))
    resolved = detail.get_attribute("data-exception")
    page.keyboard.press("r")
    assert page.evaluate("document.activeElement.name") == "reason_code"
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Tab")
    page.keyboard.type("fee on the statement")
    page.keyboard.press("Enter")
    expect(detail).not_to_have_attribute("data-exception", resolved)
    assert page.locator(f"tr[data-item] input[value='{resolved}']").count() == 0
    # The selected row is marked for the eye too, not only for a screen reader.
    selected = page.locator("#workbench tr.selected")
    assert selected.count() == 1 and selected.get_attribute("aria-current") == "true"
    page.goto(b.url(f"/projects/{pid}/audit?object_type=exception&object_id={resolved}"))
    expect(page.locator("#audit")).to_contain_text("fee on the statement")


def test_the_header_checkbox_selects_the_page_for_a_bulk_action(browsing: Browsing) -> None:
    b, page, server = browsing, browsing.page, browsing.server
    pid = server.demo_project
    b.sign_in()
    page.goto(b.url(f"/projects/{pid}/exceptions?unresolved=true&kind=suggested&sort=largest"))
    rows = page.locator("#workbench tr[data-item] input[type=checkbox]")
    assert rows.count() > 1
    page.check("[data-select-page]")
    assert all(rows.nth(i).is_checked() for i in range(rows.count()))
    page.uncheck("[data-select-page]")
    assert not any(rows.nth(i).is_checked() for i in range(rows.count()))
    # "All matching the filter" says how many it will change.
    scope = page.locator("#bulk-scope option[value=all]").inner_text()
    total = int(re.search(r"all (\d+) matching", scope).group(1))
    assert total >= rows.count()


def test_a_bank_statement_uploads_and_shows_its_balances(browsing: Browsing) -> None:
    b, page, server = browsing, browsing.page, browsing.server
    pid = api(server, "POST", "/projects", json={"name": "Statements"})["id"]
    banks = Path(__file__).resolve().parents[1] / "data" / "banks"
    b.sign_in()
    page.goto(b.url(f"/projects/{pid}/upload"))
    accepted = page.get_attribute("#file", "accept") or ""
    assert all(ext in accepted.split(",") for ext in (".sta", ".xml", ".bai2", ".ofx"))
    # Two statements: the EUR one balances, the USD one does not (10.00 - 25.00 != 20.00).
    page.set_input_files("#file", str(banks / "camt053_v04_two_statements.xml"))
    page.wait_for_selector("#preview #statements")
    expect(page.locator("#preview .problem")).to_contain_text("1 of 2 statement(s) do not balance")
    assert "Decimal mark" not in page.inner_text("#preview .facts")  # no CSV options here
    expect(page.locator("#hint_amount")).to_contain_text("fixed by the format: signed amount")
    assert page.input_value("#map_amount") == ""  # never sent back as a mapping
    b.shot("statement-preview")
    page.click("button:has-text('Upload')")
    page.wait_for_selector("h1:has-text('camt053_v04_two_statements')")
    rows = page.locator("#statements tbody tr")
    assert rows.count() == 2
    first, second = rows.nth(0).inner_text(), rows.nth(1).inner_text()
    assert "DE89370400440532013000" in first and "balanced" in first
    assert "-500.00" in first and "719.50" in first and "219.50" in first
    assert "0532013001" in second and "does not balance" in second
    assert "10.00" in second and "-25.00" in second and "20.00" in second
    expect(page.locator(".problem[role=alert]")).to_contain_text("do not balance")
    assert b.axe() == []
    b.shot("statement-source")
    # A CSV export's footer and balance lines are left out, and listed.
    page.goto(b.url(f"/projects/{pid}/upload"))
    page.set_input_files("#file", str(banks / "csv_de_sparkasse_footer.csv"))
    page.wait_for_selector("#preview h2:has-text('Preview')")
    page.click("button:has-text('Upload')")
    page.wait_for_selector("h1:has-text('csv_de_sparkasse_footer')")
    expect(page.locator("#skipped summary")).to_contain_text("2 line(s) of the file left out")
    page.click("#skipped summary")
    expect(page.locator("#skipped table")).to_contain_text("Kontostand")
