"""The README's curl walk-through, run as written against a real server."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from tests.conftest import missing_service
from tests.servers import ROOT, gunicorn

pytestmark = pytest.mark.slow
PASSWORD = "readme walkthrough password"


def walkthrough() -> str:
    text = (ROOT / "README.md").read_text()
    block = re.search(r"<!-- walkthrough:start -->\s*```bash\n(.*?)```", text, re.S)
    assert block, "the README lost its walk-through block"
    return block.group(1)


def test_readme_walkthrough_runs(tmp_path):
    for tool in ("curl", "jq"):
        if shutil.which(tool) is None:
            missing_service(tool)
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    with gunicorn(tmp_path, RECON_ADMIN_PASSWORD=PASSWORD) as base:
        result = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", walkthrough()],
            cwd=tmp_path,
            env={"PATH": "/usr/bin:/bin", "RECON": f"{base}/api", "RECON_ADMIN_PASSWORD": PASSWORD},
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert '{"username":"admin","role":"admin"}' in out
    assert '"names":["March close"]' in out
    assert '"status":"succeeded"' in out
    assert '"diff_fields":"amount,description"' in out
    assert '"status":"resolved","reason_code":"timing_difference"}' in out
    assert '{"action":"exception.resolve","actor":"admin","object_type":"exception"' in out
    assert '"unreconciled":[{"currency":' in out and '"net":' in out
    assert (tmp_path / "unmatched.csv").read_text().startswith("side,row,status")


def test_readme_lists_every_setting_with_its_default():
    from recon.config import SETTINGS

    text = (ROOT / "README.md").read_text()
    for setting in SETTINGS:
        default = (setting.default or "").replace("{var}", "$PWD/var")
        shown = f"`{default}`" if default else "(empty)"
        assert f"| `{setting.name}` | {shown} |" in text, f"{setting.name} is not in the README"
