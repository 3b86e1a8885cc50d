"""Numbered results pages: without filters (or by side only) the record before the page is
found by its position in the results file; with other filters by counting. Either way a
numbered page holds what the cursor walk holds at that place, decisions applied."""

from __future__ import annotations

import pytest

from recon.extensions import db
from recon.sources.service import delete_source
from tests.review.helpers import build_world


@pytest.fixture
def world(app, factory, as_user):
    world = build_world(app, factory, as_user)
    resolved = world.editor.patch(
        world.url(f"/exceptions/{world.eid('left', 3)}"),
        json={"status": "resolved", "reason_code": "timing_difference"},
    )
    assert resolved.status_code == 200
    return world


def shown(page: dict) -> list[tuple[str, int, str, str | None]]:
    return [(r["side"], r["row"], r["status"], r["reason_code"]) for r in page["items"]]


def walk(world, query: str) -> list[tuple[str, int, str, str | None]]:
    """Every record the cursor walk shows, a record a page."""
    url, seen = world.url(f"/jobs/{world.job.id}/results?per_page=1{query}"), []
    while url:
        page = world.viewer.get(url).get_json()
        seen += shown(page)
        url = page["next"] and world.url(
            f"/jobs/{world.job.id}/results?per_page=1{query}&after={page['next']}"
        )
    return seen


@pytest.mark.parametrize("query", ["", "&side=left", "&side=right", "&status=unmatched"])
def test_a_numbered_page_holds_what_the_cursor_walk_holds_there(world, query):
    every = walk(world, query)
    assert every, query
    if query == "":
        assert len(every) == 10 and ("left", 3, "unmatched", "timing_difference") in every
    for per_page in (1, 3, 4):
        numbered = []
        for number in range(1, len(every) // per_page + 3):
            page = world.viewer.get(
                world.url(f"/jobs/{world.job.id}/results?per_page={per_page}&page={number}{query}")
            ).get_json()
            assert page["page"] == number and page["total"] == len(every)
            numbered += [
                (r["side"], r["row"], r["status"], r["reason_code"]) for r in page["items"]
            ]
        assert numbered == every, per_page  # the pages past the end are empty


def test_a_page_far_past_the_end_is_empty(world):
    page = world.viewer.get(world.url(f"/jobs/{world.job.id}/results?page=100000")).get_json()
    assert page["items"] == [] and page["next"] is None and page["total"] == 10


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("&q=payment", [("left", 1), ("left", 2), ("right", 1), ("right", 2)]),
        ("&q=PAYMENT&side=right", [("right", 1), ("right", 2)]),
        ("&key=inv&side=right", [("right", 1), ("right", 2), ("right", 4), ("right", 5)]),
        ("&min_amount=40&max_amount=100", [(s, r) for s in ("left", "right") for r in (1, 3, 4)]),
        ("&q=globex&status=suggested", [("left", 4), ("right", 3)]),
        ("&q=nothing-like-this", []),
    ],
)
def test_filters_on_the_records_own_fields_page_and_count_alike(world, query, expected):
    assert [(side, row) for side, row, *_ in walk(world, query)] == expected
    first = world.viewer.get(world.url(f"/jobs/{world.job.id}/results?per_page=2{query}"))
    assert first.get_json()["total"] == len(expected)
    second = world.viewer.get(world.url(f"/jobs/{world.job.id}/results?per_page=2&page=2{query}"))
    assert [(r["side"], r["row"]) for r in second.get_json()["items"]] == expected[2:4]


def test_a_text_search_builds_each_sides_search_file_once_and_it_goes_with_the_source(world):
    storage = world.app.extensions["recon_storage"]
    files = {s.id: storage.path(storage.search_path(s.path)) for s in (world.left, world.right)}
    assert not any(f.exists() for f in files.values())
    url = world.url(f"/jobs/{world.job.id}/results?q=Globex")
    assert [(r["side"], r["row"]) for r in world.viewer.get(url).get_json()["items"]] == [
        ("left", 4),
        ("right", 3),
    ]
    assert all(f.exists() for f in files.values())
    built = {i: f.stat().st_mtime_ns for i, f in files.items()}
    assert world.viewer.get(url).get_json()["total"] == 2
    assert {i: f.stat().st_mtime_ns for i, f in files.items()} == built
    # A text with the separator of key and description is searched in the sources.
    odd = world.viewer.get(world.url(f"/jobs/{world.job.id}/results?q=INV-1%1FPayment"))
    assert odd.status_code == 200 and odd.get_json()["total"] == 0
    db.session.delete(world.job)  # the job first: it holds its sources
    db.session.commit()
    delete_source(session=db.session, storage=storage, source=world.left)
    assert not files[world.left.id].exists() and files[world.right.id].exists()
