"""The engine's shortcuts give the results of the plain passes, byte for byte.

Pairs whose key is unique on both sides are settled in one join (settle.py)
and results are placed by row position instead of sorted (positions.py).
These tests run the same inputs with the shortcut on and off, on row numbers
that are shuffled and have gaps, and check the summary against the file.
"""

from __future__ import annotations

import random
import threading
from collections import defaultdict
from decimal import Decimal
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recon.engine import results, run_reconciliation
from tests.engine.engine_helpers import Outcome, write_source

KEY_PASSES: list[dict[str, Any]] = [
    {"name": "exact", "match_on": ["key"], "date_window_days": 0},
    {
        "name": "close",
        "match_on": ["key", "currency"],
        "amount_tolerance": {"absolute": "0.50", "relative": "0.1"},
        "date_window_days": 2,
        "action": "suggest",
    },
    {"name": "loose", "match_on": ["key"], "amount_tolerance": {"relative": "0.5"}},
]
LATER_PASSES: list[dict[str, Any]] = [
    {"name": "by_amount", "match_on": ["amount"]},
    {"name": "grouped", "match_on": ["key"], "cardinality": "one_to_many"},
]
BREAK_ON = [["key"], ["key", "currency"], ["key", "description"], ["currency"], []]

record = st.fixed_dictionaries(
    {
        "key": st.sampled_from(["A", "a ", "B", "C", "D", "E", "F", "G", "", "H"]),
        "amount": st.sampled_from(["1.00", "1.40", "2.00", "3.00", "-1.00", "0.00", "1.05"]),
        "date": st.sampled_from([None, "2024-01-01", "2024-01-02", "2024-01-05"]),
        "currency": st.sampled_from([None, "USD", "usd", "EUR"]),
        "description": st.sampled_from([None, "rent march", "March rent", "coffee"]),
    }
)


def _numbered(records: list[dict[str, Any]], rng: random.Random) -> list[dict[str, Any]]:
    """The records with increasing row numbers that skip some values, in a shuffled order."""
    row, out = 0, []
    for r in records:
        row += rng.choice([1, 1, 2, 7])
        out.append(dict(r, row=row))
    rng.shuffle(out)
    return out


def _run(tmp: Path, tag: str, left: list[Any], right: list[Any], rules: dict[str, Any]) -> Outcome:
    lp = write_source(tmp / f"l{tag}.parquet", left)
    rp = write_source(tmp / f"r{tag}.parquet", right, scale=3)
    out = tmp / f"out{tag}.parquet"
    return Outcome(run_reconciliation(lp, rp, rules, out, temp_dir=tmp, threads=2), out)


@settings(max_examples=25, deadline=None)
@given(
    left=st.lists(record, max_size=14),
    right=st.lists(record, max_size=14),
    lead=st.integers(0, 3),
    later=st.integers(0, 2),
    break_on=st.sampled_from(BREAK_ON),
    seed=st.integers(0, 10_000),
)
def test_settling_unique_keys_changes_nothing(
    tmp_path_factory: Any,
    left: list[dict[str, Any]],
    right: list[dict[str, Any]],
    lead: int,
    later: int,
    break_on: list[str],
    seed: int,
) -> None:
    passes = KEY_PASSES[:lead] + LATER_PASSES[:later]
    if not passes:
        passes = [LATER_PASSES[0]]
    rules = {"passes": passes, "break_on": break_on}
    rng = random.Random(seed)  # noqa: S311 - a reproducible shuffle, not a secret
    left, right = _numbered(left, rng), _numbered(right, rng)
    tmp = tmp_path_factory.mktemp("fast")
    fast = _run(tmp, "fast", left, right, rules)
    with mock.patch("recon.engine.run.worth_settling", return_value=False):
        plain = _run(tmp, "plain", left, right, rules)
    assert fast.path.read_bytes() == plain.path.read_bytes()
    assert {**fast.summary, "duration_seconds": 0} == {**plain.summary, "duration_seconds": 0}


def test_summary_amounts_follow_each_records_status(reconcile: Any) -> None:
    # Rows out of order and with gaps: the per-status totals must still be
    # the amounts of the records the results file gives that status.
    rng = random.Random(3)  # noqa: S311 - a reproducible shuffle, not a secret
    left = _numbered(
        [{"key": f"K{i}", "amount": f"{i}.25", "currency": "EUR"} for i in range(40)], rng
    )
    right = _numbered(
        [{"key": f"K{i}", "amount": f"{i}.25" if i % 3 else f"{i}.75"} for i in range(0, 40, 2)],
        rng,
    )
    rules = {"passes": [{"name": "exact", "match_on": ["key"]}], "break_on": ["key"]}
    out = reconcile(left, right, rules)
    for side, records in (("left", left), ("right", right)):
        amount = {r["row"]: Decimal(r["amount"]) for r in records}
        expected: dict[str, Decimal] = defaultdict(Decimal)
        for r in out.rows:
            if r["side"] == side:
                expected[r["status"]] += amount[r["row"]]
        got = {
            status: sum((Decimal(v) for v in entry["amount"].values()), Decimal(0))
            for status, entry in out.summary[side]["by_status"].items()
            if entry["rows"]
        }
        assert got == dict(expected)
    assert out.summary["left"]["by_status"]["matched"]["rows"] == 13
    assert out.summary["breaks"] == 7
    assert [(r["side"], r["row"]) for r in out.rows] == sorted(
        (r["side"], r["row"]) for r in out.rows
    )


@settings(max_examples=15, deadline=None)
@given(
    left=st.lists(record, max_size=14),
    right=st.lists(record, max_size=14),
    chunk=st.integers(1, 5),
    seed=st.integers(0, 10_000),
)
def test_results_assembled_in_pieces_are_the_same_records(
    tmp_path_factory: Any,
    left: list[dict[str, Any]],
    right: list[dict[str, Any]],
    chunk: int,
    seed: int,
) -> None:
    # Big sides are assembled CHUNK_ROWS rows at a time to bound memory; the
    # file must hold the same records in the same order, and the same summary.
    rules = {"passes": KEY_PASSES + LATER_PASSES, "break_on": ["key"]}
    rng = random.Random(seed)  # noqa: S311 - a reproducible shuffle, not a secret
    left, right = _numbered(left, rng), _numbered(right, rng)
    tmp = tmp_path_factory.mktemp("chunks")
    whole = _run(tmp, "whole", left, right, rules)
    with mock.patch("recon.engine.results.CHUNK_ROWS", chunk):
        pieces = _run(tmp, "pieces", left, right, rules)
    assert pieces.table.schema == whole.table.schema
    assert pieces.rows == whole.rows
    assert {**pieces.summary, "duration_seconds": 0} == {**whole.summary, "duration_seconds": 0}
    assert len(pieces.rows) == len(left) + len(right)


@pytest.mark.parametrize("failing_piece", [1, 3, 5])
def test_a_fault_while_streaming_pieces_keeps_the_previous_results(
    tmp_path: Path, failing_piece: int
) -> None:
    # Pieces are assembled on a thread and streamed to the COPY. A fault in one
    # (injected: a disk or memory error cannot be caused here on demand) must
    # surface as itself, leave the earlier results file as it was, and leave no
    # temporary file or thread behind.
    left = [{"key": f"K{i}", "amount": f"{i}.00"} for i in range(10)]
    right = [{"key": f"K{i}", "amount": f"{i}.00"} for i in range(0, 10, 2)]
    lp = write_source(tmp_path / "left.parquet", left)
    rp = write_source(tmp_path / "right.parquet", right)
    out = tmp_path / "results.parquet"
    rules = {"passes": [{"name": "exact", "match_on": ["key"]}], "break_on": ["key"]}
    run_reconciliation(lp, rp, rules, out, temp_dir=tmp_path)
    before = out.read_bytes()
    files = sorted(tmp_path.iterdir())
    threads = threading.active_count()
    assemble = results._side_results
    calls = []

    def faulty(*args: Any) -> Any:
        calls.append(args)
        if len(calls) == failing_piece:
            raise OSError("injected fault")
        return assemble(*args)

    with (
        mock.patch("recon.engine.results.CHUNK_ROWS", 3),
        mock.patch("recon.engine.results._side_results", faulty),
        pytest.raises(OSError, match="injected fault"),
    ):
        run_reconciliation(lp, rp, rules, out, temp_dir=tmp_path)
    assert out.read_bytes() == before
    assert sorted(tmp_path.iterdir()) == files
    assert threading.active_count() == threads
    assert len(calls) == failing_piece  # the assembly stopped at the fault
