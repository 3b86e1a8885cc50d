"""The partitioned plan gives the single run's answer, byte for byte (DESIGN section 17)."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recon.engine import EngineError, run_reconciliation
from recon.engine.partition import (
    plan_partitions,
    reduce_partitions,
    run_partition,
    run_partitioned,
    split_sources,
)
from tests.engine.engine_helpers import write_source

# Passes a rule set is drawn from: key passes of every cardinality, with and without
# tolerances and similarity, and passes without the key (which end the leading run).
KEY_PASSES: list[dict[str, Any]] = [
    {"match_on": ["key"], "date_window_days": 0},
    {"match_on": ["key"], "amount_tolerance": {"absolute": "0.50", "relative": "0.1"}},
    {"match_on": ["key", "currency"], "date_window_days": 3, "action": "suggest"},
    {"match_on": ["key"], "description_min_similarity": 60},
    {"match_on": ["key"], "cardinality": "one_to_many"},
    {"match_on": ["key"], "cardinality": "many_to_one", "amount_tolerance": {"absolute": "1"}},
]
OTHER_PASSES: list[dict[str, Any]] = [
    {"match_on": ["amount"], "date_window_days": 2},
    {"match_on": ["currency"], "description_min_similarity": 70, "action": "suggest"},
    {"match_on": ["currency"], "cardinality": "one_to_many", "date_window_days": 1},
]
BREAKS = [["key"], [], ["key", "currency"], ["amount"]]

record = st.fixed_dictionaries(
    {
        "key": st.sampled_from(["A", "a ", "B", "C", "", "D", "É", "e"]),
        "amount": st.sampled_from(["1.00", "1.40", "2.00", "3.00", "-1.00", "0.00", "0.70"]),
        "date": st.sampled_from([None, "2024-01-01", "2024-01-02", "2024-01-05"]),
        "currency": st.sampled_from([None, "USD", "usd", "EUR"]),
        "description": st.sampled_from([None, "rent march", "March rent", "coffee", ""]),
    }
)


@st.composite
def rule_sets(draw: st.DrawFn) -> dict[str, Any]:
    chosen = draw(st.lists(st.sampled_from(KEY_PASSES), min_size=1, max_size=3))
    chosen += draw(st.lists(st.sampled_from(KEY_PASSES + OTHER_PASSES), max_size=3))
    passes = [dict(p, name=f"p{i}") for i, p in enumerate(chosen)]
    return {"passes": passes, "break_on": draw(st.sampled_from(BREAKS))}


def _planned(tmp: Path, lp: Path, rp: Path, rules: dict[str, Any], n: int) -> tuple[Path, dict]:
    """The plan run step by step in this process: split, map each part, reduce."""
    work = tmp / f"plan-{n}"
    work.mkdir()
    plan = plan_partitions(lp, rp, rules, n)
    parts = split_sources(lp, rp, plan, work)
    mapped = [
        run_partition(lpart, rpart, rules, plan, work / f"records-{i}.parquet")
        for i, (lpart, rpart) in enumerate(parts)
    ]
    out = work / "results.parquet"
    return out, reduce_partitions(lp, rp, rules, plan, mapped, out)


def _same(summary: dict[str, Any], single: dict[str, Any], partitions: int) -> None:
    assert summary.pop("partitions") == partitions
    assert {**summary, "duration_seconds": 0} == {**single, "duration_seconds": 0}


counter = itertools.count()


@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    left=st.lists(record, max_size=14),
    right=st.lists(record, max_size=14),
    rules=rule_sets(),
    partitions=st.integers(1, 4),
)
def test_partitioned_results_are_byte_identical(
    tmp_path: Path,
    left: list[dict[str, Any]],
    right: list[dict[str, Any]],
    rules: dict[str, Any],
    partitions: int,
) -> None:
    tmp = tmp_path / str(next(counter))
    tmp.mkdir()
    lp = write_source(tmp / "l.parquet", left)
    rp = write_source(tmp / "r.parquet", right, scale=3)
    single_out = tmp / "single.parquet"
    single = run_reconciliation(lp, rp, rules, single_out, temp_dir=tmp)
    out, summary = _planned(tmp, lp, rp, rules, partitions)
    assert out.read_bytes() == single_out.read_bytes()
    _same(summary, single, partitions)


def _many(n: int, prefix: str, shift: int = 0) -> list[dict[str, Any]]:
    """n records, a few keys repeating; every third amount shifted by shift cents."""
    return [
        {
            "key": f"{prefix}{i % (n - 3)}",
            "amount": f"{(i * 7) % 50 + (shift / 100 if i % 3 == 0 else 0):.2f}",
            "date": f"2024-01-{1 + i % 28:02d}",
            "currency": "USD",
            "description": f"invoice {i % 40}",
        }
        for i in range(n)
    ]


RULES: dict[str, Any] = {
    "passes": [
        {"name": "exact", "match_on": ["key"], "date_window_days": 0},
        {"name": "near", "match_on": ["key"], "amount_tolerance": {"absolute": "0.05"}},
        {"name": "amount", "match_on": ["amount"], "date_window_days": 1, "action": "suggest"},
        {"name": "late_key", "match_on": ["key"], "cardinality": "one_to_many"},
    ],
    "break_on": ["key"],
}


def test_local_processes_give_the_single_answer(tmp_path: Path) -> None:
    left = _many(400, "K")
    breaks = [dict(r, amount="99.00") for r in left[320:360]]  # keys only these two share
    right = _many(300, "K", shift=3)[::-1] + breaks + _many(30, "X")
    lp = write_source(tmp_path / "l.parquet", left)
    rp = write_source(tmp_path / "r.parquet", right)
    single = run_reconciliation(lp, rp, RULES, tmp_path / "single.parquet", temp_dir=tmp_path)
    assert single["passes"][0]["matches"] > 0 and single["breaks"] > 0
    seen: list[tuple[float, str]] = []
    summary = run_partitioned(
        lp,
        rp,
        RULES,
        tmp_path / "parts.parquet",
        partitions=3,
        processes=2,
        temp_dir=tmp_path,
        progress=lambda f, name: seen.append((f, name)),
    )
    assert (tmp_path / "parts.parquet").read_bytes() == (tmp_path / "single.parquet").read_bytes()
    _same(summary, single, 3)
    phases = [name for _f, name in seen]
    assert phases[0] == "split" and "map" in phases and phases[-1] == "done"
    assert [f for f, _ in seen] == sorted(f for f, _ in seen)
    assert not list(tmp_path.glob("recon-parts-*")), "the parts' files are removed"


def test_rules_without_a_leading_key_pass_run_unpartitioned(tmp_path: Path) -> None:
    rules = {"passes": [{"name": "amt", "match_on": ["amount"]}], "break_on": ["key"]}
    lp = write_source(tmp_path / "l.parquet", _many(20, "K"))
    rp = write_source(tmp_path / "r.parquet", _many(20, "K"))
    assert not plan_partitions(lp, rp, rules, 4).splits
    summary = run_partitioned(lp, rp, rules, tmp_path / "o.parquet", partitions=4, processes=1)
    assert summary["partitions"] == 1
    assert pq.read_table(tmp_path / "o.parquet").num_rows == 40


def test_a_part_with_no_records_on_a_side(tmp_path: Path) -> None:
    lp = write_source(tmp_path / "l.parquet", [{"key": "A", "amount": "1"}])
    rp = write_source(tmp_path / "r.parquet", [{"key": "A", "amount": "1"}])
    single = run_reconciliation(lp, rp, RULES, tmp_path / "s.parquet", temp_dir=tmp_path)
    out, summary = _planned(tmp_path, lp, rp, RULES, 8)  # seven parts are empty on both sides
    assert out.read_bytes() == (tmp_path / "s.parquet").read_bytes()
    _same(summary, single, 8)


def test_bad_plans_are_refused(tmp_path: Path) -> None:
    lp = write_source(tmp_path / "l.parquet", [{"key": "A", "amount": "1"}])
    with pytest.raises(EngineError, match="between 1 and 256"):
        plan_partitions(lp, lp, RULES, 0)
    plan = plan_partitions(lp, lp, RULES, 2)
    with pytest.raises(EngineError, match="does not exist"):
        split_sources(tmp_path / "nope.parquet", lp, plan, tmp_path)
    with pytest.raises(EngineError, match="all 2 parts"):
        reduce_partitions(lp, lp, RULES, plan, [], tmp_path / "o.parquet")


def test_rules_of_key_passes_only_pair_the_breaks_in_the_parts(tmp_path: Path) -> None:
    rules = {"passes": RULES["passes"][:2], "break_on": ["key"]}
    left = _many(200, "K")
    right = [dict(r, amount="99.00") if i % 4 == 0 else r for i, r in enumerate(left)]
    lp = write_source(tmp_path / "l.parquet", left)
    rp = write_source(tmp_path / "r.parquet", right)
    plan = plan_partitions(lp, rp, rules, 3)
    assert plan.breaks_in_parts
    assert not plan_partitions(lp, rp, RULES, 3).breaks_in_parts  # a key-less pass follows
    single = run_reconciliation(lp, rp, rules, tmp_path / "single.parquet", temp_dir=tmp_path)
    assert single["breaks"] == 50
    out, summary = _planned(tmp_path, lp, rp, rules, 3)
    assert out.read_bytes() == (tmp_path / "single.parquet").read_bytes()
    _same(summary, single, 3)
    status_codes = pq.read_table(
        list((tmp_path / "plan-3").glob("records-*.parquet")), columns=["status_code"]
    )
    assert 2 in status_codes["status_code"].to_pylist()  # the parts wrote the breaks
