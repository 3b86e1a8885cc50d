"""Each example in examples/ runs and gives the outcome written in its expected.json."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from recon.engine import run_reconciliation
from tests.engine.engine_helpers import Outcome

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
CASES = {
    "bank_ledger": ("bank.csv", "ledger.csv"),
    "card_settlements": ("settlements.csv", "orders.csv"),
    "batched_payouts": ("payouts.csv", "payments.csv"),
}


def csv_to_canonical(csv: Path, out: Path) -> Path:
    """The example CSVs use recognised headers; a one-thread DuckDB read keeps file order."""
    con = duckdb.connect()
    con.execute("SET threads = 1")
    con.execute(
        f"""COPY (SELECT row_number() OVER () AS "row", coalesce(trim(reference), '') AS "key",
                  CAST(amount AS DECIMAL(38, 2)) AS amount, CAST("date" AS DATE) AS "date",
                  currency, description
                  FROM read_csv('{csv}', all_varchar = true, header = true))
            TO '{out}' (FORMAT parquet)"""  # noqa: S608
    )
    con.close()
    return out


@pytest.mark.parametrize("name", sorted(CASES))
def test_example(name: str, tmp_path: Path) -> None:
    folder = EXAMPLES / name
    left_csv, right_csv = CASES[name]
    expected = json.loads((folder / "expected.json").read_text())
    rules = json.loads((folder / "rules.json").read_text())
    left = csv_to_canonical(folder / left_csv, tmp_path / "left.parquet")
    right = csv_to_canonical(folder / right_csv, tmp_path / "right.parquet")
    out = tmp_path / "results.parquet"
    result = Outcome(run_reconciliation(left, right, rules, out, temp_dir=tmp_path), out)
    for side in ("left", "right"):
        counts = {s: v["rows"] for s, v in result.summary[side]["by_status"].items()}
        assert counts == expected[side], side
    for pass_name, pairs in expected.get("pairs", {}).items():
        for lrow, rrow in pairs:
            assert result["left", lrow]["pass"] == pass_name
            assert result["left", lrow]["match_id"] == result["right", rrow]["match_id"]
    for lrow, fields in expected.get("diff_fields", {}).items():
        assert result["left", int(lrow)]["diff_fields"] == fields
    for pass_name, groups in expected.get("groups", {}).items():
        for lrow, rrows in groups.items():
            match_id = result["left", int(lrow)]["match_id"]
            members = sorted(
                r["row"] for r in result.rows if r["side"] == "right" and r["match_id"] == match_id
            )
            assert members == rrows
            assert result["left", int(lrow)]["pass"] == pass_name
