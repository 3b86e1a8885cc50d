"""The corpus in tests/data, driven by tests/data/corpus.json: what each file becomes or why not."""

# ruff: noqa: S608 - queries over the test's own temporary files

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest

from recon.sources.parsing import IngestResult, Limits, UploadRejected, ingest_file

DATA = Path(__file__).parent.parent / "data"
CORPUS = json.loads((DATA / "corpus.json").read_text(encoding="utf-8"))
CANONICAL = ["row", "key", "amount", "date", "currency", "description"]


def _id(entry: dict[str, Any]) -> str:
    extra = "+".join(sorted({*entry.get("options", {}), *entry.get("limits", {})}))
    if entry.get("filename"):
        extra += "+as-" + entry["filename"]
    if entry.get("mapping") and "reason" in entry:
        extra += "+mapping"
    return entry["file"] + (f"[{extra}]" if extra else "")


def _ingest(entry: dict[str, Any], tmp_path: Path) -> tuple[IngestResult, Path]:
    work = tmp_path / "work"
    work.mkdir()
    out = tmp_path / "out" / "source.parquet"
    out.parent.mkdir()
    try:
        result = ingest_file(
            DATA / entry["file"],
            out,
            filename=entry.get("filename", entry["file"]),
            mapping=entry.get("mapping"),
            options=entry.get("options"),
            limits=Limits(**entry.get("limits", {})),
            temp_dir=work,
        )
    finally:
        # Whatever happened, the temporary directory is cleaned up.
        assert list(work.iterdir()) == []
    return result, out


def _rows(path: Path) -> list[dict[str, Any]]:
    relation = duckdb.sql(f"SELECT * FROM read_parquet('{path}')")
    return [dict(zip(relation.columns, values, strict=True)) for values in relation.fetchall()]


def _text(value: Any) -> Any:
    if isinstance(value, Decimal | date):
        return str(value)
    return value


@pytest.mark.parametrize("entry", CORPUS["accepted"], ids=_id)
def test_accepted_file_becomes_the_canonical_parquet(entry: dict[str, Any], tmp_path: Path) -> None:
    result, out = _ingest(entry, tmp_path)

    assert list(out.parent.iterdir()) == [out]
    rows = _rows(out)
    assert result.row_count == entry["rows"] == len(rows)
    assert [r["row"] for r in rows] == entry["row_numbers"]
    assert result.sums == entry["sums"]
    # The reported sums are the sums of what was written, to the last decimal.
    written: dict[str, Decimal] = {}
    for r in rows:
        written[r["currency"] or ""] = written.get(r["currency"] or "", Decimal(0)) + r["amount"]
    assert {k: str(v) for k, v in written.items()} == entry["sums"]
    assert (result.min_date, result.max_date) == (entry["min_date"], entry["max_date"])
    assert result.amount_scale == entry["scale"]
    for name, value in entry["detected"].items():
        assert result.detected_options[name] == value, name
    assert result.mapping == entry.get("expect_mapping", entry.get("mapping", result.mapping))
    if "columns" in entry:
        assert result.columns == entry["columns"]

    names = [field["name"] for field in result.schema]
    assert names == CANONICAL + result.columns
    types = {field["name"]: field["type"] for field in result.schema}
    assert types["row"] == "BIGINT"
    assert types["amount"] == f"DECIMAL(38,{entry['scale']})"
    assert types["date"] == "DATE"
    assert all(types[name] == "VARCHAR" for name in ("key", "currency", "description"))
    assert all(types[name] == "VARCHAR" for name in result.columns)

    if "row" in entry:
        by_number = {r["row"]: r for r in rows}
        got = by_number[entry["row"]["row"]]
        assert {k: _text(got[k]) for k in entry["row"]} == entry["row"]


@pytest.mark.parametrize("entry", CORPUS["rejected"], ids=_id)
def test_rejected_file_says_why_and_stores_nothing(entry: dict[str, Any], tmp_path: Path) -> None:
    with pytest.raises(UploadRejected) as caught:
        _ingest(entry, tmp_path)

    rejected = caught.value
    assert list((tmp_path / "out").iterdir()) == []
    assert rejected.reason == entry["reason"]
    assert rejected.status == 422
    assert rejected.total == entry["total"]
    body = rejected.to_problem()
    assert body["total_errors"] == entry["total"]
    assert body["reason"] == entry["reason"]
    assert 1 <= len(body["errors"]) <= 50
    assert all(set(p) == {"row", "column", "value", "message"} for p in body["errors"])
    assert all(p["message"] for p in body["errors"])
    if "problems" in entry:
        got = [[p["row"], p["column"], p["value"]] for p in body["errors"]]
        expected = [
            [row, column, got[i][2] if value == "*" else value]
            for i, (row, column, value) in enumerate(entry["problems"])
        ]
        assert got == expected
