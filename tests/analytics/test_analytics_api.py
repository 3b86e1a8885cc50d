"""Analytics against known data: match rates, auto vs manual, ages, kinds, amounts, caching."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import insert, update

from recon.analytics.service import invalidate_analytics
from recon.db_types import utcnow
from recon.extensions import db
from recon.review.models import ReconException
from recon.review.state import pair_key_of
from tests.review.helpers import RULES_2


def analytics(world, client=None):
    response = (client or world.viewer).get(world.url("/analytics"))
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def test_numbers_after_one_job(world):
    data = analytics(world)
    [job] = data["jobs"]
    assert (job["id"], job["status"], job["left_rows"], job["right_rows"]) == (
        world.job.id,
        "succeeded",
        5,
        5,
    )
    assert job["match_rate"] == 0.2 and job["matched_rows"] == 2  # INV-1 on both sides
    assert [(p["name"], p["match_rate"], p["matches"]) for p in job["passes"]] == [
        ("exact", 0.2, 1),
        ("similar", 0.2, 1),
    ]
    assert job["duration_seconds"] is not None and job["duration_seconds"] >= 0
    assert data["volumes"]["jobs"] == {"succeeded": 1, "failed": 0, "cancelled": 0}
    assert data["volumes"]["rows"] == 10
    assert data["auto_vs_manual"] == {
        "records": 10,
        "auto": 2,
        "manual": 0,
        "explained": 2,
        "manual_matches": 0,
        "auto_share": 1.0,
        "manual_share": 0.0,
    }
    assert job["current_match_rate"] == 0.2 and job["explained_rate"] == 0.2
    assert data["open_exceptions"] == {
        "total": 8,
        "by_age": {"0-1": 8, "2-7": 0, "8-30": 0, ">30": 0},
        "by_kind": {"break": 2, "unmatched": 4, "suggested": 2},
    }
    assert data["unreconciled"] == [
        # left 250.00 + 75.50 + 40.00; right 245.00 + 40.00 + 45.50 + 30.00
        {
            "currency": "EUR",
            "net": "5.00",
            "gross": "726.00",
            "left": "365.50",
            "right": "360.50",
            "records": 7,
        },
        {
            "currency": "USD",
            "net": "12.00",
            "gross": "12.00",
            "left": "12.00",
            "right": "0.00",
            "records": 1,
        },
    ]
    assert data["exceptions_by_status"]["open"] == 8


def test_age_buckets(world):
    for (side, row), days in {
        ("right", 5): 40,
        ("left", 3): 10,
        ("right", 4): 3,
        ("left", 5): 1,
    }.items():
        world.change(
            update(ReconException)
            .where(ReconException.id == world.eid(side, row))
            .values(opened_at=utcnow() - timedelta(days=days, hours=1))
        )
    db.session.commit()
    assert analytics(world)["open_exceptions"]["by_age"] == {
        "0-1": 5,
        "2-7": 1,
        "8-30": 1,
        ">30": 1,
    }


def test_a_resolve_shows_at_once_and_the_cache_is_used(world):
    before = analytics(world)
    assert before["open_exceptions"]["total"] == 8
    # A change behind the services' back is not seen: the figures come from the cache.
    world.change(
        update(ReconException)
        .where(ReconException.id == world.eid("left", 2))
        .values(kind="unmatched")
    )
    db.session.commit()
    assert analytics(world)["open_exceptions"]["by_kind"]["break"] == 2
    # Resolving through the API drops the cached figures.
    response = world.editor.patch(
        world.url(f"/exceptions/{world.eid('left', 5)}"),
        json={"status": "resolved", "reason_code": "fx_difference"},
    )
    assert response.status_code == 200
    after = analytics(world)
    assert after["open_exceptions"]["total"] == 7
    assert after["open_exceptions"]["by_kind"] == {"break": 1, "unmatched": 4, "suggested": 2}
    assert [u["currency"] for u in after["unreconciled"]] == ["EUR"]
    # Resolved with a reason: explained, but nobody matched it.
    assert after["auto_vs_manual"]["manual"] == 0
    assert after["auto_vs_manual"]["explained"] == 3


def test_manual_matches_and_accepted_suggestions_count_as_manual(world):
    world.editor.post(
        world.url(f"/jobs/{world.job.id}/manual-matches"),
        json={"left_rows": [3], "right_rows": [4, 5]},
    )
    world.editor.post(world.url(f"/exceptions/{world.eid('left', 4)}/accept"))
    data = analytics(world)
    assert data["auto_vs_manual"] == {
        "records": 10,
        "auto": 2,
        "manual": 5,
        "explained": 7,
        "manual_matches": 1,
        "auto_share": round(2 / 7, 4),
        "manual_share": round(5 / 7, 4),
    }
    assert data["open_exceptions"]["by_kind"] == {"break": 2, "unmatched": 1, "suggested": 0}
    assert data["unreconciled"][0] == {
        "currency": "EUR",
        "net": "5.00",
        "gross": "495.00",
        "left": "250.00",
        "right": "245.00",
        "records": 2,
    }


def test_jobs_over_time_and_auto_from_the_latest_job_of_a_pair(world):
    job2, _ = world.rerun(RULES_2)
    invalidate_analytics(cache=world.app.extensions["recon_cache"], project_id=world.pid)
    data = analytics(world)
    assert [j["id"] for j in data["jobs"]] == [world.job.id, job2.id]
    second = data["jobs"][1]
    assert second["match_rate"] == 0.2 and second["matched_rows"] == 2  # INV-2 now, not INV-1
    assert [p["name"] for p in second["passes"]] == ["tolerant"]
    assert data["volumes"]["rows"] == 20 and data["volumes"]["jobs"]["succeeded"] == 2
    # Counted once for the pair, from its latest job; closed-by-job records are not manual.
    assert data["auto_vs_manual"]["auto"] == 2 and data["auto_vs_manual"]["manual"] == 0
    assert data["open_exceptions"]["by_kind"] == {"break": 2, "unmatched": 6, "suggested": 0}
    assert data["exceptions_by_status"]["closed"] == 2


def test_outsiders_do_not_see_analytics(world, analyst):
    assert analyst.get(world.url("/analytics")).status_code == 404


@pytest.mark.parametrize(
    "amounts",
    [
        ["12.34", "-0.05", "7"] * 70,  # SQLite's integer sums
        ["99999999999999.99"] * 1000,  # their sum overflows 64 bits: the exact aggregates
        ["12.34", "1234567890123456789.90"],  # too long for 64 bits
        ["1E+5", "2.50"],  # not plain digits
    ],
)
def test_unreconciled_amounts_are_exact_however_they_are_added(world, amounts):
    now = utcnow()
    rows = [
        {
            "project_id": world.pid,
            "job_id": world.job.id,
            "pair_key": pair_key_of(world.job),
            "kind": "unmatched",
            "side": "left",
            "row": 1000 + n,
            "amount": amount,
            "scale": 2,
            "currency": "XTS",
            "status": "open",
            "opened_at": now,
            "updated_at": now,
        }
        for n, amount in enumerate(amounts)
    ]
    world.change(insert(ReconException), rows)
    db.session.commit()
    [xts] = [u for u in analytics(world)["unreconciled"] if u["currency"] == "XTS"]
    total = sum((Decimal(a) for a in amounts), Decimal(0))
    gross = sum((abs(Decimal(a)) for a in amounts), Decimal(0))
    assert Decimal(xts["left"]) == total and Decimal(xts["net"]) == total
    assert Decimal(xts["gross"]) == gross and xts["records"] == len(amounts)
