"""Match by hand from the queue: a break's two records arrive ticked, with their difference,
wherever they are in the lists; the match needs its write-off reason."""

from __future__ import annotations

import re

import pytest

from recon.extensions import db
from recon.review.models import ReconException
from tests.review.helpers import build_world
from tests.workspace.helpers import signed_in


@pytest.fixture
def world(app, factory, as_user):
    return build_world(app, factory, as_user)


@pytest.fixture
def page(world, factory):
    return signed_in(world.app, factory, world.editor.user)


def ticked(html: str) -> list[tuple[str, str]]:
    return re.findall(r'name="(left|right)_rows" value="(\d+)" checked', html)


def test_a_break_opens_the_manual_match_with_both_records_ticked(world, page):
    # Left 2 (250.00) against right 2 (245.00): the break of the world.
    eid = world.eid("left", 2)
    detail = page.get(f"/projects/{world.pid}/exceptions/{eid}").get_data(as_text=True)
    link = re.search(r'href="([^"]+)" data-key="h"', detail).group(1).replace("&amp;", "&")
    assert f"pick={eid}" in link and f"pick={world.eid('right', 2)}" in link
    # A search that finds neither keeps them, ticked, at the top of their lists.
    html = page.get(link + "&q=Globex").get_data(as_text=True)
    assert ticked(html) == [("left", "2"), ("right", "2")]
    assert 'data-difference="5.00"' in html and "needs a write-off reason" in html
    assert 'value="Globex"' in html and html.count(f'name="pick" value="{eid}"') == 2
    refused = page.post(
        f"/projects/{world.pid}/jobs/{world.job.id}/match",
        data={"left_rows": ["2"], "right_rows": ["2"], "pick": [str(eid)]},
    ).get_data(as_text=True)
    assert "do not balance" in refused and ticked(refused) == [("left", "2"), ("right", "2")]
    made = page.post(
        f"/projects/{world.pid}/jobs/{world.job.id}/match",
        data={"left_rows": ["2"], "right_rows": ["2"], "write_off_reason": "bank_fee"},
    ).get_data(as_text=True)
    assert "writing off 5.00 (bank_fee)" in made and ticked(made) == []
    assert db.session.get(ReconException, eid).status.value == "resolved"


def test_bad_picks_are_refused_and_other_projects_records_never_show(world, page, factory):
    base = f"/projects/{world.pid}/jobs/{world.job.id}/match"
    assert page.get(f"{base}?pick=abc").status_code == 422
    assert page.get(f"{base}?pick=" + "&pick=".join(["1"] * 101)).status_code == 422
    other = factory.project(members={world.editor.user: "owner"})
    foreign = ReconException(
        project_id=other.id,
        job_id=world.job.id,
        pair_key="x",
        kind="unmatched",
        side="left",
        row=99,
        amount="1.00",
        scale=2,
        status="open",
    )
    db.session.add(foreign)
    db.session.flush()
    html = page.get(f"{base}?pick={foreign.id}").get_data(as_text=True)
    assert 'value="99"' not in html and ticked(html) == []


def test_a_manual_match_is_listed_and_undone_from_the_page(world, page, factory):
    base = f"/projects/{world.pid}/jobs/{world.job.id}"
    made = page.post(
        f"{base}/match",
        data={"left_rows": ["3"], "right_rows": ["4"], "write_off_reason": "rounding"},
    ).get_data(as_text=True)
    mid = int(re.search(r'data-manual-match="(\d+)"', made).group(1))
    row = re.search(rf'<tr data-manual-match="{mid}">.*?</tr>', made, re.S).group(0)
    assert "<td>3</td><td>4</td>" in row and "30.00" in row and "rounding" in row
    assert "Undo</button>" in row and 'name="left_rows" value="3"' not in made
    viewer = signed_in(world.app, factory, world.viewer.user)
    assert viewer.post(f"{base}/manual-matches/{mid}/undo").status_code == 403
    undone = page.post(f"{base}/manual-matches/{mid}/undo").get_data(as_text=True)
    assert f"Manual match {mid} undone: its records are open again." in undone
    assert 'name="left_rows" value="3"' in undone and 'name="right_rows" value="4"' in undone
    assert db.session.get(ReconException, world.eid("left", 3)).status.value == "reopened"
    again = page.post(f"{base}/manual-matches/{mid}/undo")
    assert again.status_code == 409 and "only an active one" in again.get_data(as_text=True)
    assert page.post(f"{base}/manual-matches/999999/undo").status_code == 404


def test_each_list_says_how_many_records_it_holds_up_to_the_cap(world, page, monkeypatch):
    url = f"/projects/{world.pid}/jobs/{world.job.id}/match"
    html = page.get(url).get_data(as_text=True)
    # bank: INV-2 (break), INV-3, X-9 (suggested), INV-5; ledger: INV-2, Y-7, INV-8, INV-9
    assert "Left: 4 open</legend>" in html and "Right: 4 open</legend>" in html
    monkeypatch.setattr("recon.workspace.views.manual.LIST_LIMIT", 2)
    html = page.get(url).get_data(as_text=True)
    assert "Left: 4 open, the first 2 shown (search to narrow)</legend>" in html
    monkeypatch.setattr("recon.pagination.TOTAL_CAP", 3)  # counting stops past the cap
    html = page.get(url).get_data(as_text=True)
    assert "Left: 3+ open, the first 2 shown (search to narrow)</legend>" in html
