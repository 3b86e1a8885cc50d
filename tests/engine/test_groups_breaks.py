"""Group passes, breaks and duplicate keys (DESIGN.md section 6)."""

from __future__ import annotations

from decimal import Decimal

from tests.engine.conftest import Runner
from tests.engine.engine_helpers import one_pass


def test_one_to_many_matches_the_whole_group_when_the_sum_balances(reconcile: Runner) -> None:
    out = reconcile(
        [{"key": "P1", "amount": "100.00"}, {"key": "P2", "amount": "50.00"}],
        [
            {"key": "p1", "amount": "60.00"},
            {"key": "P1", "amount": "39.99"},
            {"key": "P2", "amount": "20.00"},
            {"key": "P2", "amount": "20.00"},
        ],
        one_pass(cardinality="one_to_many", amount_tolerance={"absolute": "0.01"}),
    )
    assert out.status("left", 1) == "matched"
    assert out["right", 1]["match_id"] == out["right", 2]["match_id"] == out["left", 1]["match_id"]
    assert out["left", 1]["amount_diff"] == Decimal("0.01")
    # P2's group sums to 40, not 50: nothing of it matches.
    assert {out.status("left", 2), out.status("right", 3), out.status("right", 4)} == {"unmatched"}
    assert out.summary["passes"][0]["matches"] == 1
    assert out.summary["passes"][0]["right_rows"] == 2


def test_group_takes_all_peers_not_a_subset(reconcile: Runner) -> None:
    # 30 + 70 would balance, but the group is every peer: 30 + 70 + 5.
    out = reconcile(
        [{"key": "B", "amount": "100"}],
        [{"key": "B", "amount": "30"}, {"key": "B", "amount": "70"}, {"key": "B", "amount": "5"}],
        one_pass(cardinality="one_to_many"),
    )
    assert out.status("left", 1) == "unmatched"


def test_group_members_must_fall_in_the_date_window(reconcile: Runner) -> None:
    out = reconcile(
        [{"key": "B", "amount": "100", "date": "2024-05-10"}],
        [
            {"key": "B", "amount": "40", "date": "2024-05-09"},
            {"key": "B", "amount": "60", "date": "2024-05-12"},
            {"key": "B", "amount": "1", "date": "2024-06-30"},  # outside: not in the group
        ],
        one_pass(cardinality="one_to_many", date_window_days=2),
    )
    assert out.status("left", 1) == "matched"
    assert out.status("right", 3) == "unmatched"
    assert out["right", 2]["date_diff_days"] == -2
    assert out["left", 1]["date_diff_days"] == -2
    assert out["left", 1]["confidence"] == round(100 * (1 + (1 - 2 / 3)) / 2, 2)


def test_many_to_one_mirrors_one_to_many(reconcile: Runner) -> None:
    out = reconcile(
        [{"key": "Z", "amount": "10"}, {"key": "Z", "amount": "15"}],
        [{"key": "Z", "amount": "25"}],
        one_pass(cardinality="many_to_one"),
    )
    assert out.status("right", 1) == "matched"
    ids = {out["left", 1]["match_id"], out["left", 2]["match_id"], out["right", 1]["match_id"]}
    assert ids == {1}
    assert out.summary["passes"][0]["left_rows"] == 2


def test_a_record_joins_one_group_only(reconcile: Runner) -> None:
    # Both left records see the same two peers; only the first can take them,
    # the second is left with an empty group.
    out = reconcile(
        [{"key": "K", "amount": "30"}, {"key": "K", "amount": "30"}],
        [{"key": "K", "amount": "10"}, {"key": "K", "amount": "20"}],
        one_pass(cardinality="one_to_many"),
    )
    assert out.status("left", 1) == "matched"
    assert out.status("left", 2) == "unmatched"
    assert {out["right", 1]["match_id"], out["right", 2]["match_id"]} == {1}


def test_group_members_share_a_currency(reconcile: Runner) -> None:
    out = reconcile(
        [{"key": "K", "amount": "30", "currency": None}],
        [
            {"key": "K", "amount": "10", "currency": "USD"},
            {"key": "K", "amount": "20", "currency": "EUR"},
        ],
        one_pass(cardinality="one_to_many"),
    )
    assert out.status("left", 1) == "unmatched"


def test_breaks_pair_leftovers_on_break_on_with_field_differences(reconcile: Runner) -> None:
    rules = {"passes": [{"name": "exact", "match_on": ["key"]}], "break_on": ["key"]}
    out = reconcile(
        [
            {
                "key": "A",
                "amount": "10.00",
                "date": "2024-01-01",
                "currency": "USD",
                "description": "Rent",
            },
            {"key": "B", "amount": "5.00", "date": "2024-01-01", "currency": "USD"},
        ],
        [
            {
                "key": "A",
                "amount": "12.00",
                "date": "2024-01-03",
                "currency": "EUR",
                "description": "rent ",
            },
            {"key": "C", "amount": "5.00"},
        ],
        rules,
    )
    left = out["left", 1]
    assert left["status"] == out.status("right", 1) == "break"
    assert left["pass"] == "break" and left["confidence"] is None
    assert left["match_id"] == out["right", 1]["match_id"] == 1
    assert left["diff_fields"] == "amount,date,currency"  # "Rent" vs "rent ": same description
    assert left["amount_diff"] == Decimal("-2.00")
    assert out.status("left", 2) == out.status("right", 2) == "unmatched"
    assert out["left", 2]["diff_fields"] is None
    assert out.summary["breaks"] == 1


def test_breaks_pair_smallest_amount_difference_first(reconcile: Runner) -> None:
    out = reconcile(
        [{"key": "A", "amount": "100"}, {"key": "A", "amount": "200"}],
        [{"key": "A", "amount": "150"}, {"key": "A", "amount": "199"}],
        {"passes": [{"name": "never", "match_on": ["key", "description"]}], "break_on": ["key"]},
    )
    # |200-199| = 1 pairs first; then 100 with 150.
    assert out.pairs() == {(2, 2), (1, 1)}
    assert out.status("left", 1) == "break"


def test_break_on_empty_turns_breaks_off(reconcile: Runner) -> None:
    out = reconcile(
        [{"key": "A", "amount": "1"}],
        [{"key": "A", "amount": "2"}],
        {"passes": [{"name": "p", "match_on": ["key"]}], "break_on": []},
    )
    assert out.status("left", 1) == "unmatched"


def test_duplicate_keys_are_flagged_per_side(reconcile: Runner) -> None:
    out = reconcile(
        [{"key": "A", "amount": "1"}, {"key": " a", "amount": "2"}, {"key": "B", "amount": "3"}],
        [{"key": "A", "amount": "1"}, {"key": "B", "amount": "3"}],
        one_pass(),
    )
    assert [out["left", i]["duplicate_key"] for i in (1, 2, 3)] == [True, True, False]
    assert not out["right", 1]["duplicate_key"]
    assert out.summary["duplicate_keys"] == {"left": 2, "right": 0}
