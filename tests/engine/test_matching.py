"""DESIGN.md section 6, one-to-one passes: each semantics line has a test here."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.engine.conftest import Runner
from tests.engine.engine_helpers import one_pass


def test_key_is_trimmed_and_case_folded(reconcile: Runner) -> None:
    out = reconcile(
        [{"key": "  INV-1 ", "amount": "10"}, {"key": "STRASSE", "amount": "5"}],
        [{"key": "inv-1", "amount": "10"}, {"key": "straße", "amount": "5"}],
        one_pass(),
    )
    assert out.pairs() == {(1, 1), (2, 2)}


def test_currency_is_upper_cased_and_must_agree_when_both_have_one(reconcile: Runner) -> None:
    out = reconcile(
        [
            {"key": "A", "amount": "1", "currency": "usd"},
            {"key": "B", "amount": "1", "currency": "USD"},
            {"key": "C", "amount": "1", "currency": None},
        ],
        [
            {"key": "A", "amount": "1", "currency": "USD"},
            {"key": "B", "amount": "1", "currency": "EUR"},
            {"key": "C", "amount": "1", "currency": "GBP"},
        ],
        one_pass(),
    )
    assert out.pairs() == {(1, 1), (3, 3)}
    assert out.status("left", 2) == out.status("right", 2) == "unmatched"


def test_composite_match_on_needs_every_field_equal(reconcile: Runner) -> None:
    out = reconcile(
        [
            {"key": "A", "amount": "1", "date": "2024-01-01"},
            {"key": "A", "amount": "2", "date": "2024-01-02"},
        ],
        [
            {"key": "A", "amount": "2", "date": "2024-01-01"},
            {"key": "a", "amount": "1", "date": "2024-01-02"},
        ],
        one_pass(match_on=["key", "date"], amount_tolerance={"absolute": "5"}),
    )
    assert out.pairs() == {(1, 1), (2, 2)}


def test_amount_in_match_on_means_exactly_equal_across_scales(reconcile: Runner) -> None:
    out = reconcile(
        [{"key": "x", "amount": "10.00"}, {"key": "y", "amount": "10.00"}],
        [{"key": "z", "amount": "10.000"}, {"key": "w", "amount": "10.001"}],
        one_pass(match_on=["amount"]),
        right_scale=3,
    )
    assert out.pairs() == {(1, 1)}
    assert out.status("right", 2) == "unmatched"


def test_amount_tolerance_omitted_means_equal(reconcile: Runner) -> None:
    out = reconcile(
        [{"key": "A", "amount": "10.00"}, {"key": "B", "amount": "10.00"}],
        [{"key": "A", "amount": "10.00"}, {"key": "B", "amount": "10.01"}],
        one_pass(),
    )
    assert out.pairs() == {(1, 1)}


@pytest.mark.parametrize(
    ("tolerance", "right_amount", "matches"),
    [
        ({"absolute": "0.05"}, "100.05", True),
        ({"absolute": "0.05"}, "100.06", False),
        ({"absolute": "0.05"}, "99.95", True),
        ({"relative": "0.01"}, "101.01", True),  # 1.01 <= 0.01 * 101.01
        ({"relative": "0.01"}, "101.02", False),
        ({"relative": "0.01"}, "99.00", True),  # 1.00 <= 0.01 * 100 (the larger amount)
        ({"absolute": "0.01", "relative": "0.001"}, "100.10", True),  # relative wins
        ({"absolute": "0.50", "relative": "0.001"}, "100.50", True),  # absolute wins
        ({"absolute": "0.01", "relative": "0.001"}, "100.11", False),
    ],
)
def test_amount_tolerance_absolute_or_relative(
    reconcile: Runner, tolerance: dict[str, str], right_amount: str, matches: bool
) -> None:
    out = reconcile(
        [{"key": "A", "amount": "100.00"}],
        [{"key": "A", "amount": right_amount}],
        one_pass(amount_tolerance=tolerance),
    )
    assert (out.status("left", 1) == "matched") is matches


def test_amount_tolerance_is_symmetric(reconcile: Runner) -> None:
    rules = one_pass(amount_tolerance={"relative": "0.01"})
    a = [{"key": "A", "amount": "100.00"}, {"key": "B", "amount": "-50.00"}]
    b = [{"key": "A", "amount": "101.01"}, {"key": "B", "amount": "-50.50"}]
    forward, backward = reconcile(a, b, rules), reconcile(b, a, rules)
    assert forward.pairs() == backward.pairs() == {(1, 1), (2, 2)}
    assert forward["left", 1]["amount_diff"] == -backward["left", 1]["amount_diff"]


def test_tolerance_finer_than_the_amounts_is_exact(reconcile: Runner) -> None:
    out = reconcile(
        [{"key": "A", "amount": "1.00"}, {"key": "B", "amount": "1.00"}],
        [{"key": "A", "amount": "1.001"}, {"key": "B", "amount": "1.002"}],
        one_pass(amount_tolerance={"absolute": "0.001"}),
        right_scale=3,
    )
    assert out.pairs() == {(1, 1)}
    assert out["left", 1]["amount_diff"] == Decimal("-0.001")


@pytest.mark.parametrize(
    ("right_date", "matches"),
    [("2024-03-04", True), ("2024-02-27", True), ("2024-03-05", False), ("2024-02-26", False)],
)
def test_date_window(reconcile: Runner, right_date: str, matches: bool) -> None:
    out = reconcile(
        [{"key": "A", "amount": "1", "date": "2024-03-01"}],
        [{"key": "A", "amount": "1", "date": right_date}],
        one_pass(date_window_days=3),
    )
    assert (out.status("left", 1) == "matched") is matches


def test_dates_not_compared_without_a_window(reconcile: Runner) -> None:
    out = reconcile(
        [{"key": "A", "amount": "1", "date": "2020-01-01"}],
        [{"key": "A", "amount": "1", "date": "2024-12-31"}],
        one_pass(),
    )
    assert out.pairs() == {(1, 1)}
    assert out["left", 1]["date_diff_days"] == -1826


def test_description_similarity_at_or_above_threshold(reconcile: Runner) -> None:
    left = [
        {"key": "1", "amount": "10", "description": "ACME   Corp invoice 77"},
        {"key": "2", "amount": "20", "description": "Coffee beans"},
    ]
    right = [
        {"key": "x", "amount": "10", "description": "invoice 77 acme corp"},
        {"key": "y", "amount": "20", "description": "Office chairs"},
    ]
    out = reconcile(left, right, one_pass(match_on=["amount"], description_min_similarity=100))
    assert out.pairs() == {(1, 1)}
    assert out.status("left", 2) == "unmatched"
    assert out["left", 1]["confidence"] == 100.0


def test_description_below_threshold_is_not_matched(reconcile: Runner) -> None:
    from rapidfuzz import fuzz

    a, b = "monthly rent march", "monthly rent april"
    score = fuzz.token_set_ratio(a, b, processor=None)
    left = [{"key": "1", "amount": "5", "description": a}]
    right = [{"key": "2", "amount": "5", "description": b}]
    at = reconcile(left, right, one_pass(match_on=["amount"], description_min_similarity=score))
    above = reconcile(
        left, right, one_pass(match_on=["amount"], description_min_similarity=score + 0.5)
    )
    assert at.status("left", 1) == "matched"
    assert above.status("left", 1) == "unmatched"


def test_confidence_is_the_mean_of_compared_components(reconcile: Runner) -> None:
    out = reconcile(
        [{"key": "A", "amount": "100.00", "date": "2024-01-01"}],
        [{"key": "A", "amount": "100.50", "date": "2024-01-02"}],
        one_pass(amount_tolerance={"absolute": "2.00"}, date_window_days=3),
    )
    # amount 1 - 0.50/2.00 = 0.75; date 1 - 1/4 = 0.75
    assert out["left", 1]["confidence"] == 75.0
    assert out["right", 1]["confidence"] == 75.0
    exact = reconcile([{"key": "A", "amount": "1"}], [{"key": "A", "amount": "1"}], one_pass())
    assert exact["left", 1]["confidence"] == 100.0


def test_passes_run_in_order_and_do_not_reoffer_matched_records(reconcile: Runner) -> None:
    rules = {
        "passes": [
            {"name": "exact", "match_on": ["key"]},
            {"name": "loose", "match_on": ["key"], "amount_tolerance": {"absolute": "5"}},
        ],
        "break_on": [],
    }
    out = reconcile(
        [{"key": "A", "amount": "10"}, {"key": "A", "amount": "12"}],
        [{"key": "A", "amount": "12"}, {"key": "A", "amount": "10"}],
        rules,
    )
    # loose alone would pair (1,1) first by row order; exact must claim both first.
    assert out.pairs() == {(1, 2), (2, 1)}
    assert {out["left", 1]["pass"], out["left", 2]["pass"]} == {"exact"}
    assert [p["matches"] for p in out.summary["passes"]] == [2, 0]


def test_one_to_one_greedy_prefers_confidence_then_amount_then_days_then_rows(
    reconcile: Runner,
) -> None:
    rules = one_pass(amount_tolerance={"absolute": "1.00"}, date_window_days=5)
    out = reconcile(
        [
            {"key": "A", "amount": "10.00", "date": "2024-01-10"},
            {"key": "A", "amount": "10.00", "date": "2024-01-10"},
        ],
        [
            {"key": "A", "amount": "10.50", "date": "2024-01-10"},  # conf (50+100)/2 = 75
            {"key": "A", "amount": "10.00", "date": "2024-01-13"},  # conf (100+50)/2 = 75
            {"key": "A", "amount": "10.00", "date": "2024-01-10"},  # conf 100
        ],
        rules,
    )
    # Right 3 is the best for everyone and goes to the lowest left row; then the
    # tie at 75 is broken by |amount diff|: right 2 (diff 0) beats right 1 (diff 0.50).
    assert out.pairs() == {(1, 3), (2, 2)}
    assert out.status("right", 1) == "unmatched"


def test_greedy_tie_on_everything_goes_to_lowest_rows(reconcile: Runner) -> None:
    same = {"key": "A", "amount": "3"}
    out = reconcile([same, same], [same, same, same], one_pass())
    assert out.pairs() == {(1, 1), (2, 2)}
    assert out.status("right", 3) == "unmatched"


def test_greedy_is_not_a_per_row_best_pick(reconcile: Runner) -> None:
    # Left 1 prefers right 1, but right 1 is better used by left 2 (higher
    # confidence), so left 1 falls back to right 2.
    rules = one_pass(amount_tolerance={"absolute": "1.00"})
    out = reconcile(
        [{"key": "A", "amount": "10.00"}, {"key": "A", "amount": "10.30"}],
        [{"key": "A", "amount": "10.20"}, {"key": "A", "amount": "10.90"}],
        rules,
    )
    assert out.pairs() == {(2, 1), (1, 2)}


def test_suggest_action_gives_suggested_status(reconcile: Runner) -> None:
    out = reconcile(
        [{"key": "A", "amount": "1"}], [{"key": "A", "amount": "1"}], one_pass(action="suggest")
    )
    assert out.status("left", 1) == out.status("right", 1) == "suggested"
    assert out["left", 1]["pass"] == "p"
    assert out.summary["left"]["by_status"]["suggested"]["rows"] == 1
    assert out.summary["match_rate"] == 0.0


def test_empty_keys_never_match_and_are_not_duplicates(reconcile: Runner) -> None:
    out = reconcile(
        [{"key": "", "amount": "1"}, {"key": " ", "amount": "1"}],
        [{"key": "", "amount": "1"}],
        one_pass(),
    )
    assert out.status("left", 1) == out.status("right", 1) == "unmatched"
    assert not out["left", 1]["duplicate_key"]


def test_match_ids_and_diffs_are_shared_by_the_records_of_a_match(reconcile: Runner) -> None:
    out = reconcile(
        [{"key": "B", "amount": "5", "date": "2024-01-05"}, {"key": "A", "amount": "7"}],
        [{"key": "A", "amount": "7"}, {"key": "B", "amount": "4.5", "date": "2024-01-01"}],
        one_pass(amount_tolerance={"absolute": "1"}),
    )
    assert out["left", 1]["match_id"] == out["right", 2]["match_id"] == 1
    assert out["left", 2]["match_id"] == out["right", 1]["match_id"] == 2
    assert out["right", 2]["amount_diff"] == Decimal("0.50")
    assert out["right", 2]["date_diff_days"] == 4
    assert out["left", 1]["confidence"] == 50.0
