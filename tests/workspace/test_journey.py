"""The whole journey of a finance user, in a real browser, on the demo data: sign in, upload
two files with a mapping (fixing a rejected one), build rules, dry-run, save and run them,
watch the progress, explore the results, resolve an exception, accept a suggestion, match
two records by hand, see the analytics change, sign out."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from recon.demo import generate
from tests.workspace.conftest import Browsing

# One server and one browser for every browser test: the same xdist worker runs them all.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("browser")]


def open_total(b: Browsing, pid: str) -> int:
    b.page.goto(b.url(f"/projects/{pid}/analytics"))
    return int(b.page.inner_text("[data-open-total]"))


def test_journey(browsing: Browsing, tmp_path) -> None:  # noqa: PLR0915 - one story, told in order
    b, page = browsing, browsing.page
    b.watch.expected_statuses.add(422)  # the first upload is rejected on purpose
    bank, ledger = generate(rows=400, seed=11)
    (tmp_path / "bank-march.csv").write_text(bank)
    (tmp_path / "ledger-march.csv").write_text(ledger)

    # Sign in: the workspace sends an anonymous visitor to the sign-in page first.
    page.goto(b.url("/"))
    assert "/login" in page.url
    b.shot("01-sign-in")
    assert b.axe() == []
    b.sign_in()
    assert page.locator("h1").inner_text() == "Projects"
    assert page.get_by_role("link", name="Bank vs ledger (demo)").is_visible()
    b.shot("02-projects")
    assert b.axe() == []

    # A new project for the month.
    page.fill("#name", "March close (journey)")
    page.fill("#description", "Bank statement against the ledger")
    page.click("text=Create project")
    page.wait_for_selector("h1:has-text('March close (journey)')")
    pid = re.search(r"/projects/(\d+)", page.url).group(1)

    # Upload the bank statement, with a wrong date format chosen first: every day past the
    # 12th is a row problem, shown as a table; the choices made survive the fix.
    b.follow("nav.tabs >> text=Upload")
    page.fill("#date_format", "%m/%d/%Y")
    page.fill("#map_description", "Narrative")
    page.set_input_files("#file", str(tmp_path / "bank-march.csv"))
    page.wait_for_selector("#preview .problem")
    assert page.input_value("#name") == "bank-march"  # named after the file
    problems = page.locator("#preview table.problems tbody tr")
    assert problems.count() >= 1
    assert "date" in problems.first.inner_text().lower()
    assert page.input_value("#date_format") == "%m/%d/%Y"  # kept, to be corrected
    assert page.input_value("#map_description") == "Narrative"
    b.shot("03-upload-rejected")
    page.fill("#date_format", "%d/%m/%Y")
    page.click("button:has-text('Preview')")
    page.wait_for_selector("#preview h2:has-text('Preview')")
    assert page.input_value("#map_key") == "Reference"  # what recon recognised, shown
    assert page.input_value("#map_description") == "Narrative"  # what the user chose, kept
    assert "skipped" in page.inner_text("#preview .facts").lower()
    rows = page.locator("#preview tbody tr")
    assert rows.count() == 20
    b.shot("04-upload-preview")
    assert b.axe() == []
    page.click("button:has-text('Upload')")
    page.wait_for_selector("h1:has-text('bank-march')")
    assert "Booking Date" in page.inner_text(".facts")
    b.shot("05-source")

    # The ledger: its key column has a name recon does not guess.
    b.follow("nav.tabs >> text=Upload")
    page.set_input_files("#file", str(tmp_path / "ledger-march.csv"))
    page.wait_for_selector("#preview")
    page.fill("#name", "Ledger March")
    page.fill("#map_key", "Doc No")
    page.fill("#map_date", "Posting Date")
    page.click("button:has-text('Upload')")
    page.wait_for_selector("h1:has-text('Ledger March')")

    # Rules: start from the demo's preset, make a mistake, see it beside its field, fix it.
    b.follow("nav.tabs >> text=Rule sets")
    page.select_option("#preset", label="demo: monthly bank reconciliation")
    page.click("text=Load preset")
    page.wait_for_selector("#p3-name")
    page.fill("#p1-absolute", "a lot")
    page.press("#p1-absolute", "Tab")
    page.wait_for_selector("#editor .field-error:has-text('decimal number')")
    assert "problem" in page.inner_text("#json-title")
    b.shot("06-rules-invalid")
    page.fill("#p1-absolute", "0.05")
    page.press("#p1-absolute", "Tab")
    page.wait_for_selector("#json-title .ok-tag")
    assert '"absolute": "0.05"' in page.inner_text(".json pre")
    page.select_option("#dry-left", label="bank-march")
    page.select_option("#dry-right", label="Ledger March")
    page.click("button:has-text('Dry run')")
    page.wait_for_selector("#dry-run h2:has-text('matched')", timeout=30_000)
    assert page.locator("#dry-run tbody tr").count() == 4  # candidates and matches per pass
    expect(page.locator("#dry-run h2")).to_be_in_viewport()  # scrolled to, not below the fold
    b.shot("07-rules-dry-run")
    assert b.axe() == []
    page.fill("#rs-name", "March rules")
    page.click("button:has-text('Save rule set')")
    page.wait_for_selector("text=Saved “March rules” as version 1")
    page.select_option("#run-left", label="bank-march")
    page.select_option("#run-right", label="Ledger March")
    page.click("form.run button:has-text('Run')")

    # Watch the job run, then read its summary.
    page.wait_for_selector("#progress progress")
    b.shot("08-job-running", full_page=False)
    page.wait_for_selector("#progress .status-succeeded", timeout=30_000)
    page.wait_for_selector("table.summary")
    jid = re.search(r"/jobs/(\d+)", page.url).group(1)
    assert page.locator("table.summary tbody tr").count() == 4
    b.shot("09-job-summary")
    assert b.axe() == []

    # Results: the breaks, one compared with its counterpart, the differing amount marked.
    b.follow("text=Explore the results")
    page.select_option("#f-status", "break")
    page.wait_for_url("**status=break**")  # pushed once the filtered table is in
    page.locator("#results button:has-text('Compare')").first.click()
    page.wait_for_selector("#match-view mark")
    assert page.locator("#match-view td.differs").count() >= 2
    b.shot("10-results")
    assert b.axe() == []

    before = open_total(b, pid)
    b.shot("11-analytics-before")

    # Exceptions: resolve the first break; the next item is selected.
    page.goto(b.url(f"/projects/{pid}/exceptions?unresolved=true&job={jid}&kind=break"))
    first = page.get_attribute("#detail article", "data-exception")
    page.select_option(f"#reason-{first}", "bank_fee")
    page.fill(f"#note-{first}", "charged by the bank")
    page.click("form.resolve button")
    expect(page.locator("#detail article")).not_to_have_attribute("data-exception", first)
    second = page.get_attribute("#detail article", "data-exception")
    assert second != first
    assert page.locator(f"tr[data-item] input[value='{first}']").count() == 0
    # Keyboard: next and previous, and the list of shortcuts on "?".
    page.keyboard.press("j")
    expect(page.locator("#detail article")).not_to_have_attribute("data-exception", second)
    page.keyboard.press("k")
    expect(page.locator("#detail article")).to_have_attribute("data-exception", second)
    page.keyboard.press("?")
    assert page.locator("#shortcuts").is_visible()
    b.shot("12-shortcuts", full_page=False)
    page.keyboard.press("Escape")
    b.shot("13-exceptions")
    assert b.axe() == []

    # Accept a suggestion with the keyboard.
    page.goto(b.url(f"/projects/{pid}/exceptions?unresolved=true&job={jid}&kind=suggested"))
    suggestion = page.get_attribute("#detail article", "data-exception")
    page.keyboard.press("a")
    expect(page.locator("#detail article")).not_to_have_attribute("data-exception", suggestion)
    page.goto(b.url(f"/projects/{pid}/audit?object_type=exception&object_id={suggestion}"))
    assert "exception.accept" in page.inner_text("#audit")

    # Match two records by hand: the difference shows, a write-off reason settles it.
    page.goto(b.url(f"/projects/{pid}/jobs/{jid}/match"))
    page.locator("input[name=left_rows]").first.check()
    page.locator("input[name=right_rows]").first.check()
    page.wait_for_selector("#balance [data-difference]")
    difference = page.get_attribute("#balance [data-difference]", "data-difference")
    b.shot("14-manual-match")
    if difference.strip("0.-") != "":
        page.select_option("#write-off", "written_off")
    page.click("button:has-text('Match the picked records')")
    page.wait_for_selector("#manual-area .ok:has-text('Matched 1 left and 1 right')")

    # The analytics count what people did.
    after = open_total(b, pid)
    assert after <= before - 5, (before, after)  # 1 break, 2 of the suggestion, 2 by hand
    b.shot("15-analytics-after")
    assert b.axe() == []
    page.goto(b.url(f"/projects/{pid}/audit"))
    assert "manual_match.create" in page.inner_text("#audit")
    b.shot("16-audit")

    # Sign out: the token is revoked, the pages ask to sign in again.
    page.click("button:has-text('Sign out')")
    page.wait_for_selector("text=You are signed out.")
    page.goto(b.url(f"/projects/{pid}"))
    assert "/login" in page.url
