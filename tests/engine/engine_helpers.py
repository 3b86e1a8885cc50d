"""Helpers for the engine tests: write small canonical sources and read the results."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

Record = dict[str, Any]


def write_source(path: Path, records: Sequence[Record], *, scale: int = 2) -> Path:
    """Write a canonical source Parquet; each record gives key, amount and optionally the rest.

    ``row`` defaults to the 1-based position; amounts are strings or Decimals.
    """
    rows = [r.get("row", i + 1) for i, r in enumerate(records)]
    table = pa.table(
        {
            "row": pa.array(rows, pa.int64()),
            "key": pa.array([r.get("key", "") for r in records], pa.string()),
            "amount": pa.array(
                [Decimal(str(r["amount"])) for r in records], pa.decimal128(38, scale)
            ),
            "date": pa.array(
                [dt.date.fromisoformat(r["date"]) if r.get("date") else None for r in records],
                pa.date32(),
            ),
            "currency": pa.array([r.get("currency") for r in records], pa.string()),
            "description": pa.array([r.get("description") for r in records], pa.string()),
            "memo": pa.array([r.get("memo", "") for r in records], pa.string()),
        }
    )
    pq.write_table(table, path)
    return path


class Outcome:
    """The summary and the results of one run, indexed by (side, row)."""

    def __init__(self, summary: dict[str, Any], results_path: Path) -> None:
        self.summary = summary
        self.path = results_path
        self.table = pq.read_table(results_path)
        self.rows = self.table.to_pylist()
        self.by_key = {(r["side"], r["row"]): r for r in self.rows}

    def __getitem__(self, key: tuple[str, int]) -> Record:
        return self.by_key[key]

    def status(self, side: str, row: int) -> str:
        return str(self.by_key[(side, row)]["status"])

    def pairs(self) -> set[tuple[int, int]]:
        """(left row, right row) of every one-to-one match or break."""
        groups: dict[int, dict[str, list[int]]] = {}
        for r in self.rows:
            if r["match_id"] is not None:
                groups.setdefault(r["match_id"], {"left": [], "right": []})[r["side"]].append(
                    r["row"]
                )
        return {
            (g["left"][0], g["right"][0])
            for g in groups.values()
            if len(g["left"]) == 1 and len(g["right"]) == 1
        }


def one_pass(**settings: Any) -> dict[str, Any]:
    """Rules with one pass named 'p' (match_on key unless given) and no breaks."""
    settings.setdefault("match_on", ["key"])
    return {"passes": [{"name": "p", **settings}], "break_on": []}


EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def reconcile_card_settlements(out: Path, *extra: str) -> int:
    """``recon reconcile`` on the card-settlements example's two CSV files, into ``out``."""
    from recon.engine.cli import main

    folder = EXAMPLES / "card_settlements"
    files = [str(folder / "settlements.csv"), str(folder / "orders.csv")]
    return main(
        ["reconcile", *files, "--rules", str(folder / "rules.json"), "--out", str(out), *extra]
    )
