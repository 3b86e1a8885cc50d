"""Processes freeze their loaded heap before the work that allocates (recon.heap)."""

from __future__ import annotations

import gc
import importlib.util
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from recon.engine.cli import main
from tests.engine.engine_helpers import reconcile_card_settlements

ROOT = Path(__file__).resolve().parents[1]


class Loaded:
    """An object made before the process's hook runs: it stands for what was loaded."""


@pytest.fixture
def loaded() -> Iterator[Loaded]:
    gc.unfreeze()
    sentinel = Loaded()
    assert _in_reach(sentinel)
    yield sentinel
    gc.unfreeze()  # the rest of the suite runs as before


def _in_reach(obj: object) -> bool:
    # gc.get_objects() lists what the collector scans; frozen objects are not among them.
    return any(o is obj for o in gc.get_objects())


def test_the_command_line_freezes_what_it_loaded_before_it_reads(
    loaded: Loaded, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = reconcile_card_settlements(tmp_path / "out")
    assert code == 0, capsys.readouterr().err
    assert not _in_reach(loaded)
    assert not _in_reach(main)  # the command line's own module


def test_a_gunicorn_worker_freezes_the_loaded_app(loaded: Loaded) -> None:
    path = ROOT / "ops" / "gunicorn.conf.py"
    spec = importlib.util.spec_from_file_location("gunicorn_conf", path)
    assert spec is not None and spec.loader is not None
    conf = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(conf)
    conf.post_worker_init(SimpleNamespace(cfg=SimpleNamespace(workers=1)))
    assert not _in_reach(loaded)


def test_a_celery_worker_child_freezes_the_loaded_app(tmp_path: Path) -> None:
    # In a process of its own: the signal also disposes of the app's database engine.
    script = (
        "import gc\n"
        "from celery.signals import worker_process_init\n"
        "from recon import create_app\n"
        "create_app()\n"
        "gc.unfreeze()\n"
        "worker_process_init.send(sender=None)\n"
        "print(gc.get_freeze_count())\n"
    )
    env = {
        **os.environ,
        "RECON_DATABASE_URL": f"sqlite:///{tmp_path / 'recon.db'}",
        "RECON_DATA_DIR": str(tmp_path / "data"),
        "RECON_JOB_RUNNER": "celery",  # the app a worker loads; nothing here connects
        "RECON_REDIS_URL": "redis://127.0.0.1:1/0",
    }
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert int(done.stdout.strip().splitlines()[-1]) > 100_000  # the loaded app, frozen
