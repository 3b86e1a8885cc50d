"""The four-pass recipe on a seeded 100k case, CSV in through ``recon reconcile``: pinned bytes.

The speed work (issue 16) may change how the engine and the parser compute,
never what they produce. This runs bench/engine's default recipe (exact on
key; tolerant on key 0.01 / 0.5 % / 3 days; amount + date 2 days +
description similarity 80 as suggestions; one-to-many on key; breaks on key;
duplicate keys and descriptions) from the two generated CSV files through the
command line, and compares a hash of every results row (in side, row order)
and of the summary without its durations with the figures recorded before
any of that work. The inputs' own hashes are pinned too, so a change of the
generator (or of DuckDB's ``hash()`` it seeds from) reads as such, not as an
engine change.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import duckdb
import pytest

from recon.engine.cli import main

ROOT = Path(__file__).resolve().parents[2]
ROWS = 100_000
SEED = 7
LEFT_SHA256 = "1a2491334ec87366adb9d320f0762cb351cf29f45d0e52d955f1b9c1c4987d73"
RIGHT_SHA256 = "e87cdc64f276fa748d0dba91730d27ebd0d70ecbb9bd7b9a6d9bb826b46c62b9"
RESULTS_SHA256 = "73ae407d62bfe476ddffa4f4c202f9a504e6c755df72cd2a858451671560c398"
SUMMARY_SHA256 = "6befc729008a212715dc8a8053920d999c2af2760e109bc3515784e2add08be4"


def _bench_data() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "bench_engine_data", ROOT / "bench/engine/data.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def results_digest(path: Path) -> str:
    """SHA-256 of every results row as text, in side, row order (independent of the file layout)."""
    con = duckdb.connect()
    rows = con.execute(
        """SELECT CAST(side AS VARCHAR), "row", CAST(status AS VARCHAR), CAST(pass AS VARCHAR),
                  match_id, CAST(confidence AS VARCHAR), CAST(amount_diff AS VARCHAR),
                  date_diff_days, duplicate_key, diff_fields
           FROM read_parquet(?) ORDER BY side, "row" """,
        [str(path)],
    ).fetchall()
    schema = con.execute("DESCRIBE SELECT * FROM read_parquet(?)", [str(path)]).fetchall()
    con.close()
    digest = hashlib.sha256(repr([(c[0], c[1]) for c in schema]).encode())
    for row in rows:
        digest.update(repr(row).encode())
    return digest.hexdigest()


def summary_digest(summary: dict[str, Any]) -> str:
    """SHA-256 of the summary without duration_seconds, keys sorted."""
    kept = {k: v for k, v in summary.items() if k != "duration_seconds"}
    return hashlib.sha256(json.dumps(kept, sort_keys=True).encode()).hexdigest()


@pytest.fixture(scope="module")
def recipe_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    work = tmp_path_factory.mktemp("pinned")
    data = _bench_data()
    left, right = data.generate(work, ROWS, SEED, "four_pass")
    rules = work / "rules.json"
    rules.write_text(json.dumps(data.FOUR_PASS_RULES))
    out = work / "out"
    code = main(["reconcile", str(left), str(right), "--rules", str(rules), "--out", str(out)])
    assert code == 0
    return left, right, out


def test_the_generated_inputs_are_the_pinned_ones(recipe_run: tuple[Path, Path, Path]) -> None:
    left, right, _ = recipe_run
    assert (_sha256(left), _sha256(right)) == (LEFT_SHA256, RIGHT_SHA256)


def test_every_pass_of_the_recipe_has_work_to_do(recipe_run: tuple[Path, Path, Path]) -> None:
    summary = json.loads((recipe_run[2] / "summary.json").read_text())
    matches = {p["name"]: p["matches"] for p in summary["passes"]}
    # The generator's shares of 100k entities: 60 % exact, 15 % tolerant, 5 % suggested,
    # 5 % split in two on the right, 5 % breaks; 1 % of left keys repeat.
    assert matches["exact"] > 55_000
    assert matches["tolerant"] > 13_000
    assert matches["amount_date"] > 4_000
    assert matches["batched"] > 4_000
    assert summary["breaks"] > 4_000
    assert summary["duplicate_keys"]["left"] > 500
    assert summary["right"]["by_status"]["suggested"]["rows"] == matches["amount_date"]


def test_results_and_summary_are_the_pinned_bytes(recipe_run: tuple[Path, Path, Path]) -> None:
    out = recipe_run[2]
    summary = json.loads((out / "summary.json").read_text())
    assert (results_digest(out / "results.parquet"), summary_digest(summary)) == (
        RESULTS_SHA256,
        SUMMARY_SHA256,
    )
