"""The suite's own machinery: what `make test` relies on to stay within its time."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

GROUPED = """
import pytest

pytestmark = pytest.mark.xdist_group("one-worker")


@pytest.mark.parametrize("i", range(6))
def test_grouped(i):
    assert i >= 0
"""


@pytest.mark.slow
def test_an_xdist_group_runs_on_one_worker(tmp_path: Path) -> None:
    # Each group starts its servers once (a Prometheus stack, a browser); a split group
    # starts them on every worker. pytest 9.2 with pytest-xdist 3.8 splits them silently.
    (tmp_path / "test_grouped.py").write_text(GROUPED)
    (tmp_path / "test_other.py").write_text("def test_a():\n    pass\n\ndef test_b():\n    pass\n")
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-n", "2", "--dist", "loadgroup", "-v"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    workers = {
        line.split("]")[0].lstrip("[")
        for line in done.stdout.splitlines()
        if "PASSED" in line and "test_grouped" in line
    }
    assert len(workers) == 1, done.stdout
