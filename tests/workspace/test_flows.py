"""The workspace's pages doing their work, in-process: upload, rules, a job, results,
exceptions (the next item selected after each action), manual matches, analytics."""

from __future__ import annotations

import html as html_lib
import io
import re

import pytest

from recon.extensions import db
from recon.jobs.models import Job, JobStatus
from recon.review.models import ReconException
from tests.review.helpers import BANK, build_world
from tests.workspace.helpers import signed_in


@pytest.fixture
def world(app, factory, as_user):
    return build_world(app, factory, as_user)


@pytest.fixture
def page(world, factory):
    return signed_in(world.app, factory, world.editor.user)


def selected(html):
    return int(re.search(r'data-exception="(\d+)"', html).group(1))


def test_upload_preview_then_a_rejection_keeps_every_choice(world, page):
    form = {
        "name": "March",
        "map_description": "Description",
        "delimiter": ",",
        "date_format": "%m/%d/%Y",
    }
    csv = BANK.replace("2024-03-05", "13/05/2024")
    rejected = page.post(
        f"/projects/{world.pid}/upload/preview",
        data={**form, "file": (io.BytesIO(csv.encode()), "march.csv")},
        content_type="multipart/form-data",
    )
    html = rejected.get_data(as_text=True)
    assert rejected.status_code == 422
    assert '<td class="num">5</td><td>Date</td><td><code>13/05/2024</code></td>' in html
    assert 'hx-swap-oob="true"' in html  # the fields come back as they were sent
    assert 'value="%m/%d/%Y"' in html and 'value="Description"' in html
    assert '<option value="," selected>' in html
    ok = page.post(
        f"/projects/{world.pid}/upload/preview",
        data={
            "name": "March",
            "file": (io.BytesIO(BANK.replace("INV-1,", "NEW-1,").encode()), "m.csv"),
        },
        content_type="multipart/form-data",
    )
    html = ok.get_data(as_text=True)
    assert ok.status_code == 200 and "The first 5 records as recon read them" in html
    assert 'id="map_key" name="map_key" list="columns" value="Reference"' in html
    duplicate = page.post(
        f"/projects/{world.pid}/upload",
        data={"name": "again", "file": (io.BytesIO(BANK.encode()), "bank.csv")},
        content_type="multipart/form-data",
    )
    assert duplicate.status_code == 409 and "uploaded already" in duplicate.get_data(as_text=True)


def test_rules_editor_shows_the_engines_verdict_beside_the_field(world, page):
    form = {
        "passes": "1",
        "p0.name": "exact",
        "p0.match_on": ["key", "amount"],
        "p0.absolute": "0.01",
        "p0.date_window_days": "many",
        "break_on": ["key"],
    }
    html = page.post(f"/projects/{world.pid}/rules/check", data=form).get_data(as_text=True)
    assert "a tolerance can not apply" in html  # amount in match_on with a tolerance
    assert "must be a whole number" in html
    assert 'value="many"' in html  # what was typed stays, to be corrected
    added = page.post(f"/projects/{world.pid}/rules/check", data={**form, "op": "add"})
    assert 'id="p1-name"' in added.get_data(as_text=True)
    fixed = {**form, "p0.match_on": ["key"], "p0.date_window_days": "2", "name": "Mine"}
    saved = page.post(f"/projects/{world.pid}/rules", data=fixed, htmx=False)
    assert saved.status_code == 303 and "saved=1" in saved.headers["Location"]
    shown = html_lib.unescape(page.get(saved.headers["Location"]).get_data(as_text=True))
    assert "Saved “Mine” as version 1" in shown and '"date_window_days": 2' in shown
    ruleset = re.search(r"ruleset=(\d+)", saved.headers["Location"]).group(1)
    run = page.post(
        f"/projects/{world.pid}/jobs",
        data={
            "left_source_id": world.left.id,
            "right_source_id": world.right.id,
            "ruleset_id": ruleset,
        },
        htmx=False,
    )
    jid = int(run.headers["Location"].rsplit("/", 1)[1])
    job_page = page.get(f"/projects/{world.pid}/jobs/{jid}").get_data(as_text=True)
    assert "Records and amounts per status" in job_page  # the inline runner has finished it


def test_dry_run_shows_counts_per_pass_and_publishes_nothing(world, page):
    before = db.session.query(ReconException).count()
    form = {
        "passes": "1",
        "p0.name": "exact",
        "p0.match_on": ["key"],
        "break_on": ["key"],
        "left_source_id": world.left.id,
        "right_source_id": world.right.id,
    }
    html = page.post(f"/projects/{world.pid}/rules/dry-run", data=form).get_data(as_text=True)
    assert "Dry run" in html and "<td>exact</td>" in html and "Candidate pairs" in html
    assert db.session.query(ReconException).count() == before
    same = page.post(
        f"/projects/{world.pid}/rules/dry-run", data={**form, "right_source_id": world.left.id}
    )
    assert same.status_code == 422 and "different sources" in same.get_data(as_text=True)


def test_progress_of_a_partitioned_job_counts_its_parts(world, page):
    job = db.session.get(Job, world.job.id)
    job.status = JobStatus.running
    job.progress = {"fraction": 0.275, "pass": "map", "partitions": 4, "parts_done": 1}
    db.session.flush()
    html = page.get(f"/projects/{world.pid}/jobs/{job.id}/progress", htmx=True)
    text = html.get_data(as_text=True)
    assert "1 of 4 parts matched" in text and "28%" in text
    job.progress = {"fraction": 0.9, "pass": "reduce: tolerant"}
    db.session.flush()
    text = page.get(f"/projects/{world.pid}/jobs/{job.id}/progress", htmx=True).get_data(
        as_text=True
    )
    assert "pass “reduce: tolerant”" in text and "parts matched" not in text


def test_job_page_summary_results_and_a_match_side_by_side(world, page):
    jid = world.job.id
    html = page.get(f"/projects/{world.pid}/jobs/{jid}").get_data(as_text=True)
    assert "Per pass" in html and "Duplicate keys" in html and "similar" in html
    progress = page.get(f"/projects/{world.pid}/jobs/{jid}/progress", htmx=True)
    assert progress.headers["HX-Refresh"] == "true"  # finished: the page shows the summary
    results = page.get(f"/projects/{world.pid}/jobs/{jid}/results?status=break", htmx=True)
    text = results.get_data(as_text=True)
    mid = re.search(r"/matches/(\d+)", text).group(1)
    assert "INV-2" in text and "INV-3" not in text
    match = page.get(f"/projects/{world.pid}/jobs/{jid}/matches/{mid}", htmx=True).get_data(
        as_text=True
    )
    assert match.count("<mark>250.00</mark>") == 1 and match.count("<mark>245.00</mark>") == 1
    assert "<mark>INV-2</mark>" not in match  # the key is the same on both sides
    export = page.get(f"/projects/{world.pid}/jobs/{jid}/export.csv?status=break")
    assert (
        export.headers["Content-Disposition"]
        == f'attachment; filename="job-{jid}-records-break.csv"'
    )
    assert len(export.get_data(as_text=True).strip().splitlines()) == 3


def test_cancel_of_a_finished_job_is_a_409_message(world, page):
    response = page.post(f"/projects/{world.pid}/jobs/{world.job.id}/cancel")
    assert response.status_code == 409 and "already succeeded" in response.get_data(as_text=True)
    assert db.session.get(Job, world.job.id).cancel_requested is False


def test_resolving_selects_the_next_item_and_assigning_keeps_the_queue(world, page):
    back = "unresolved=true&kind=unmatched"
    queue = page.get(f"/projects/{world.pid}/exceptions?{back}").get_data(as_text=True)
    first = selected(queue)
    order = [int(i) for i in re.findall(r'name="ids" value="(\d+)"', queue)]
    assert order[0] == first and len(order) == 4
    resolved = page.post(
        f"/projects/{world.pid}/exceptions/{first}/resolve",
        data={"reason_code": "bank_fee", "note": "fee", "back": back, "i": "0"},
    ).get_data(as_text=True)
    assert selected(resolved) == order[1]  # the resolved one left the queue
    everything = page.get(f"/projects/{world.pid}/exceptions?unresolved=").get_data(as_text=True)
    assert f'name="ids" value="{first}"' in everything  # "all" shows it again
    assert db.session.get(ReconException, first).reason_code == "bank_fee"
    assigned = page.post(
        f"/projects/{world.pid}/exceptions/{order[1]}/assign", data={"back": back, "i": "0"}
    ).get_data(as_text=True)
    assert selected(assigned) == order[2]  # still in the queue: the one after it
    missing_reason = page.post(
        f"/projects/{world.pid}/exceptions/{order[2]}/resolve", data={"back": back, "i": "1"}
    )
    assert missing_reason.status_code == 422
    assert db.session.get(ReconException, order[2]).status.value == "open"


def test_accept_one_by_one_and_reject_in_bulk(world, page):
    eid = world.eid("left", 4)
    accepted = page.post(
        f"/projects/{world.pid}/exceptions/{eid}/accept", data={"back": "kind=suggested", "i": "0"}
    )
    assert accepted.status_code == 200
    assert (
        db.session.get(ReconException, world.eid("right", 3)).reason_code == "matched_by_suggestion"
    )
    bulk = page.post(
        f"/projects/{world.pid}/exceptions/bulk",
        data={"ids": [world.eid("left", 3), world.eid("right", 4)], "action": "assign", "back": ""},
    ).get_data(as_text=True)
    assert "Assign: 2 changed" in bulk
    none = page.post(f"/projects/{world.pid}/exceptions/bulk", data={"action": "accept"})
    assert none.status_code == 422


def test_comment_and_the_exceptions_own_history(world, page):
    eid = world.eid("left", 2)
    html = page.post(
        f"/projects/{world.pid}/exceptions/{eid}/comments",
        data={"body": "asked the bank", "i": "0"},
    ).get_data(as_text=True)
    assert "asked the bank" in html and "exception.comment" in html


def test_manual_match_shows_the_running_difference_and_needs_a_write_off(world, page):
    jid = world.job.id
    lists = page.get(f"/projects/{world.pid}/jobs/{jid}/match").get_data(as_text=True)
    assert 'name="left_rows" value="3"' in lists and 'name="right_rows" value="4"' in lists
    balance = page.post(
        f"/projects/{world.pid}/jobs/{jid}/match/balance",
        data={"left_rows": ["3"], "right_rows": ["4"]},
    ).get_data(as_text=True)
    assert 'data-difference="30.00"' in balance and "needs a write-off reason" in balance
    refused = page.post(
        f"/projects/{world.pid}/jobs/{jid}/match", data={"left_rows": ["3"], "right_rows": ["4"]}
    )
    assert refused.status_code == 422 and "do not balance" in refused.get_data(as_text=True)
    made = page.post(
        f"/projects/{world.pid}/jobs/{jid}/match",
        data={"left_rows": ["3"], "right_rows": ["4"], "write_off_reason": "rounding"},
    ).get_data(as_text=True)
    assert "Matched 1 left and 1 right record(s), writing off 30.00 (rounding)" in made
    assert 'name="left_rows" value="3"' not in made  # no longer open
    mixed = page.post(
        f"/projects/{world.pid}/jobs/{jid}/match/balance",
        data={"left_rows": ["5"], "right_rows": ["5"]},
    ).get_data(as_text=True)
    assert 'data-code="mixed_currencies"' in mixed


def test_analytics_draws_the_services_figures(world, page):
    html = page.get(f"/projects/{world.pid}/analytics").get_data(as_text=True)
    assert "data-open-total>8</dd>" in html  # 4 a side: a break, a suggestion, 2 unmatched
    assert (
        'aria-label="Open exceptions by age: 0-1 days 8, 2-7 days 0, 8-30 days 0, &gt;30 days 0"'
        in html
    )
    assert "EUR left" in html and "<svg" in html
    # Net and gross per currency, as the API gives them (the table's columns had no value).
    [eur] = [
        u
        for u in world.viewer.get(world.url("/analytics")).get_json()["unreconciled"]
        if u["currency"] == "EUR"
    ]
    row = re.search(r"<td>EUR</td>.*?</tr>", html, re.S).group(0)
    net = re.search(r"data-net>([^<]*)<", row).group(1)
    gross = re.search(r"data-gross>([^<]*)<", row).group(1)
    assert net.replace(",", "") == eur["net"] and gross.replace(",", "") == eur["gross"]
    # Resolving with a reason explains a record without matching it: its own figure.
    page.post(
        f"/projects/{world.pid}/exceptions/bulk",
        data={"scope": "all", "action": "resolve", "reason_code": "other", "back": "kind=break"},
    )
    html = page.get(f"/projects/{world.pid}/analytics").get_data(as_text=True)
    assert "data-explained-by-reason>2</dd>" in html and "data-manual>0</dd>" in html


def test_a_bulk_action_over_every_exception_matching_the_filter(world, page):
    breaks = [
        e for e in world.ids if db.session.get(ReconException, world.ids[e]).kind.value == "break"
    ]
    others = [world.ids[e] for e in world.ids if e not in breaks]
    assert breaks and others
    answer = page.post(
        f"/projects/{world.pid}/exceptions/bulk",
        data={"scope": "all", "action": "resolve", "reason_code": "other", "back": "kind=break"},
    )
    assert answer.status_code == 200
    assert f"Resolve: {len(breaks)} changed" in answer.get_data(as_text=True)
    for key in breaks:
        assert db.session.get(ReconException, world.ids[key]).status.value == "resolved"
    assert {db.session.get(ReconException, i).status.value for i in others} == {"open"}
    # Nothing ticked and the scope left at "the selected": refused, nothing changes.
    refused = page.post(
        f"/projects/{world.pid}/exceptions/bulk",
        data={"action": "resolve", "reason_code": "other", "back": ""},
    )
    assert refused.status_code == 422
    assert "Select at least one exception" in html_lib.unescape(refused.get_data(as_text=True))
    assert {db.session.get(ReconException, i).status.value for i in others} == {"open"}
