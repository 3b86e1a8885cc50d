"""Fixtures for the engine tests."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from recon.engine import run_reconciliation
from tests.engine.engine_helpers import Outcome, Record, write_source

Runner = Callable[..., Outcome]


@pytest.fixture
def reconcile(tmp_path: Path) -> Runner:
    """Run the engine on two record lists under rules; returns an Outcome."""
    counter = iter(range(1_000_000))

    def run(
        left: Sequence[Record],
        right: Sequence[Record],
        rules: dict[str, Any],
        *,
        left_scale: int = 2,
        right_scale: int = 2,
        **kwargs: Any,
    ) -> Outcome:
        n = next(counter)
        lpath = write_source(tmp_path / f"left{n}.parquet", left, scale=left_scale)
        rpath = write_source(tmp_path / f"right{n}.parquet", right, scale=right_scale)
        out = tmp_path / f"results{n}.parquet"
        summary = run_reconciliation(lpath, rpath, rules, out, temp_dir=tmp_path, **kwargs)
        return Outcome(summary, out)

    return run
