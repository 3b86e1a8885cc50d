"""The exceptions list at depth: keyset cursors (next / after), page= as before, capped total."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import insert

from recon.db_types import utcnow
from recon.extensions import db
from recon.pagination import TOTAL_CAP, encode_keyset
from recon.review.models import ReconException

SORTS = (None, "oldest", "newest", "largest", "smallest")


def listing(world, query):
    response = world.viewer.get(world.url(f"/exceptions?{query}"))
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def walk(world, query):
    """Every page through next/after; return the ids in order and the pages seen."""
    ids, pages, after = [], 0, None
    while True:
        page = listing(world, query + (f"&after={after}" if after else ""))
        ids += [e["id"] for e in page["items"]]
        pages += 1
        after = page["next"]
        if after is None:
            return ids, pages


@pytest.mark.parametrize("sort", SORTS)
def test_the_cursor_walks_the_same_list_as_the_pages(world, sort):
    query = "per_page=3" + (f"&sort={sort}" if sort else "")
    everything = listing(world, query.replace("per_page=3", "per_page=100"))
    assert everything["total"] == 8 and everything["total_exact"] is True
    assert everything["next"] is None
    if sort in ("largest", "smallest"):  # by size, ties (the two 40.00) by id
        order = [(abs(Decimal(e["amount"])), e["id"]) for e in everything["items"]]
        assert order == sorted(order, reverse=sort == "largest")
        assert len({size for size, _ in order}) < len(order)
    ids, pages = walk(world, query)
    assert ids == [e["id"] for e in everything["items"]] and pages == 3
    by_number = [e["id"] for n in (1, 2, 3) for e in listing(world, f"{query}&page={n}")["items"]]
    assert by_number == ids
    # page= hands out next too: its cursor continues where that page ended.
    second = listing(world, f"{query}&page=2")
    assert [e["id"] for e in listing(world, f"{query}&after={second['next']}")["items"]] == ids[6:]


def test_filters_apply_to_the_pages_after_a_cursor(world):
    ids, _ = walk(world, "per_page=1&kind=unmatched&status=open")
    found = listing(world, "per_page=100&kind=unmatched&status=open")["items"]
    assert ids == [e["id"] for e in found] and len(ids) == 4


def test_bad_cursors_and_arguments_are_422_and_change_nothing(world):
    other_sort = listing(world, "per_page=2&sort=largest")["next"]
    ours = listing(world, "per_page=2")["next"]
    forged = (
        encode_keyset(["oldest", "yesterday", 1]),
        encode_keyset(["oldest", "2024-01-01T00:00:00", 1]),  # no zone
        encode_keyset(["largest", "NaN", 1]),
        encode_keyset(["largest", "1e999999", 1]),
        encode_keyset(["oldest", "2024-01-01T00:00:00+00:00", "1"]),
        encode_keyset([1, 2]),
    )
    for query in (
        f"sort=oldest&after={other_sort}",
        "after=not-a-cursor!",
        "after=%FF%FE",
        *(f"after={c}" + ("&sort=largest" if "largest" in str(c) else "") for c in forged),
        f"after={ours}&page=2",
        "count=approximately",
    ):
        response = world.viewer.get(world.url(f"/exceptions?{query}"))
        assert response.status_code == 422, (query, response.get_json())
        problem = response.get_json()
        assert problem["errors"], problem
    assert listing(world, "per_page=100")["total"] == 8


def test_total_stops_at_the_cap_unless_counted_exactly(world):
    now = utcnow()
    rows = [
        {
            "project_id": world.pid,
            "job_id": world.job.id,
            "pair_key": "bulk",
            "kind": "unmatched",
            "side": "left",
            "row": n,
            "amount": "1.00",
            "scale": 2,
            "status": "open",
            "opened_at": now,
            "updated_at": now,
        }
        for n in range(TOTAL_CAP + 5)
    ]
    world.change(insert(ReconException), rows)
    db.session.flush()
    capped = listing(world, "per_page=10")
    assert (capped["total"], capped["total_exact"]) == (TOTAL_CAP, False)
    exact = listing(world, "per_page=10&count=exact")
    assert (exact["total"], exact["total_exact"]) == (TOTAL_CAP + 5 + 8, True)
    # A deep page by cursor: the 1001st page of ten starts where the offset says it does.
    deep = listing(world, "per_page=10&page=1001")
    after = listing(world, f"per_page=10&after={listing(world, 'per_page=10&page=1000')['next']}")
    assert [e["id"] for e in after["items"]] == [e["id"] for e in deep["items"]]
