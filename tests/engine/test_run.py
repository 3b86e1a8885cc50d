"""run_reconciliation as the job runner sees it: limits, progress, cancel, bad inputs."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from recon.engine import EngineCancelled, EngineError, run_reconciliation
from recon.engine.load import connect
from tests.engine.conftest import Runner
from tests.engine.engine_helpers import one_pass, write_source

SAME_KEY = [{"key": "K", "amount": str(i)} for i in range(20)]


def test_too_many_candidates_fails_before_the_join(reconcile: Runner) -> None:
    rules = {
        "passes": [
            {"name": "first", "match_on": ["currency"]},
            {"name": "wide", "match_on": ["key"], "amount_tolerance": {"absolute": "100"}},
        ],
        "break_on": [],
    }
    with pytest.raises(EngineError) as info:
        reconcile(SAME_KEY, SAME_KEY, rules, max_candidates=399)
    assert "'wide'" in info.value.detail and "400" in info.value.detail
    problem = info.value.to_problem()
    assert problem["status"] == 422
    assert problem["code"] == "too_many_candidates"
    assert problem["pass_name"] == "wide" and problem["estimate"] == 400
    # At the limit it runs.
    out = reconcile(SAME_KEY, SAME_KEY, rules, max_candidates=400)
    assert out.summary["passes"][1]["matches"] == 20


def test_the_estimate_counts_pairs_sharing_the_hash_join_keys(reconcile: Runner) -> None:
    # Exact amounts join on (key, amount): 20 pairs, not 400.
    out = reconcile(SAME_KEY, SAME_KEY, one_pass(), max_candidates=20)
    assert out.summary["passes"][0]["estimate"] == 20


def test_breaks_are_checked_against_the_limit_too(reconcile: Runner) -> None:
    rules = {"passes": [{"name": "p", "match_on": ["description"]}], "break_on": ["key"]}
    with pytest.raises(EngineError, match="'break'"):
        reconcile(SAME_KEY, SAME_KEY, rules, max_candidates=100)


def test_progress_reports_each_pass_in_order(reconcile: Runner) -> None:
    seen: list[tuple[float, str]] = []
    rules = {
        "passes": [{"name": "one", "match_on": ["key"]}, {"name": "two", "match_on": ["amount"]}],
    }
    reconcile(SAME_KEY, SAME_KEY, rules, progress=lambda f, n: seen.append((f, n)))
    assert [n for _, n in seen] == ["load", "one", "two", "break", "write", "done"]
    fractions = [f for f, _ in seen]
    assert fractions == sorted(fractions) and fractions[0] == 0.0 and fractions[-1] == 1.0


def test_cancel_is_checked_between_passes(tmp_path: Path, reconcile: Runner) -> None:
    calls: list[str] = []

    def progress(_fraction: float, name: str) -> None:
        calls.append(name)

    rules = {"passes": [{"name": "one", "match_on": ["key"]}, {"name": "two", "match_on": ["key"]}]}
    with pytest.raises(EngineCancelled):
        reconcile(
            SAME_KEY, SAME_KEY, rules, progress=progress, should_cancel=lambda: "one" in calls
        )
    assert calls == ["load", "one"]
    assert not list(tmp_path.glob("results*.parquet"))
    assert not list(tmp_path.glob("recon-engine-*"))  # the spill directory is cleaned up


def test_missing_or_malformed_sources_are_engine_errors(tmp_path: Path) -> None:
    good = write_source(tmp_path / "good.parquet", SAME_KEY)
    rules = one_pass()
    with pytest.raises(EngineError, match="does not exist"):
        run_reconciliation(tmp_path / "nope.parquet", good, rules, tmp_path / "o.parquet")
    (tmp_path / "junk.parquet").write_text("not parquet")
    with pytest.raises(EngineError, match="not a readable Parquet"):
        run_reconciliation(good, tmp_path / "junk.parquet", rules, tmp_path / "o.parquet")
    duckdb.sql(f"COPY (SELECT 1 AS \"row\", 'k' AS key) TO '{tmp_path / 'thin.parquet'}'")
    with pytest.raises(EngineError, match="amount, date, currency, description"):
        run_reconciliation(good, tmp_path / "thin.parquet", rules, tmp_path / "o.parquet")
    duckdb.sql(
        f"""COPY (SELECT 1 AS "row", 'k' AS key, 1.5::DOUBLE AS amount, NULL::DATE AS date,
            NULL AS currency, NULL AS description) TO '{tmp_path / "float.parquet"}'"""
    )
    with pytest.raises(EngineError, match="exact decimal"):
        run_reconciliation(good, tmp_path / "float.parquet", rules, tmp_path / "o.parquet")
    dup = write_source(
        tmp_path / "dup.parquet",
        [{"row": 1, "key": "a", "amount": "1"}, {"row": 1, "key": "b", "amount": "2"}],
    )
    with pytest.raises(EngineError, match="row column must be unique"):
        run_reconciliation(good, dup, rules, tmp_path / "o.parquet")


def test_connection_has_memory_limit_spill_directory_and_threads(tmp_path: Path) -> None:
    con = connect(memory_limit="256MB", temp_dir=tmp_path, threads=1)
    settings = dict(
        con.execute(
            "SELECT name, value FROM duckdb_settings() "
            "WHERE name IN ('memory_limit', 'temp_directory', 'threads')"
        ).fetchall()
    )
    assert settings["temp_directory"] == str(tmp_path)
    assert settings["threads"] == "1"
    assert settings["memory_limit"].startswith("244") or "256" in settings["memory_limit"]


def test_a_job_larger_than_its_memory_limit_spills_instead_of_failing(tmp_path: Path) -> None:
    # The keys alone (2 x 300k x 116 bytes, about 70 MB) exceed the 64 MB limit.
    rows = 300_000
    for name in ("l", "r"):
        duckdb.sql(
            f"""COPY (SELECT i + 1 AS "row", 'KEY-' || lpad(CAST(i AS VARCHAR), 12, '0')
                        || repeat('x', 100) AS key,
                      CAST(i AS DECIMAL(38, 2)) AS amount, DATE '2024-01-01' AS date,
                      'USD' AS currency, repeat('d', 20) AS description
                FROM range({rows}) t(i)) TO '{tmp_path / name}.parquet'"""  # noqa: S608
        )
    summary = run_reconciliation(
        tmp_path / "l.parquet",
        tmp_path / "r.parquet",
        one_pass(),
        tmp_path / "o.parquet",
        memory_limit="64MB",
        temp_dir=tmp_path,
        threads=1,
    )
    assert summary["left"]["by_status"]["matched"]["rows"] == rows


def test_totals_past_28_digits_are_summed_exactly(tmp_path: Path) -> None:
    # 22 integer digits and 16 decimals: the per-currency totals need 38 digits, more
    # than Python's default decimal context keeps (it raised InvalidOperation).
    big = "1234567890123456789012.1234567890123456"
    records = [{"key": f"K{i}", "amount": big} for i in range(3)]
    left = write_source(tmp_path / "l.parquet", records, scale=16)
    right = write_source(tmp_path / "r.parquet", records[:2], scale=16)
    summary = run_reconciliation(left, right, one_pass(), tmp_path / "o.parquet")
    left_side = summary["left"]["by_status"]
    assert left_side["matched"]["amount"] == {"": "2469135780246913578024.2469135780246912"}
    assert left_side["unmatched"]["amount"] == {"": big}
