"""gunicorn SIGKILLed while it runs a job on the thread runner: after a restart the reaper
fails the job with a sentence, its files are gone, and the pair takes a new job."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
import requests

from tests.faults.traffic import login, upload
from tests.jobs.pipeline import wait_for
from tests.servers import free_port, gunicorn, migrate, server_env, start_gunicorn

pytestmark = [pytest.mark.slow]
PASSWORD = "crash-tests-password"
LEFT = "Reference,Amount,Date\nA1,10.00,2024-01-01\nA2,20.00,2024-01-02\n"
RIGHT = "Reference,Amount,Date\nA1,10.00,2024-01-01\nB2,20.00,2024-01-02\n"
RULES = {"passes": [{"name": "exact", "match_on": ["key"]}]}
SETTINGS = {"RECON_ADMIN_PASSWORD": PASSWORD, "RECON_JOB_STALE_SECONDS": "4"}


def _serve(tmp: Path, port: int, log: Path, **extra: str) -> subprocess.Popen:
    env = server_env(tmp, port, **SETTINGS, **extra)
    migrate(env)
    with log.open("wb") as out:
        # Its own session, so one killpg takes the master and its worker, no cleanup at all.
        proc = start_gunicorn(env, out, own_session=True)

    def up() -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=2):  # noqa: S310
                return True
        except OSError:
            return proc.poll() is not None

    wait_for(up, 60, "gunicorn to start")
    assert proc.poll() is None, log.read_text()
    return proc


def _post_job(base: str, auth: dict, pid: int, left: int, right: int) -> requests.Response:
    return requests.post(
        f"{base}/api/projects/{pid}/jobs",
        headers=auth,
        json={"left_source_id": left, "right_source_id": right, "rules": RULES},
        timeout=30,
    )


def test_a_job_of_a_killed_server_ends_failed_after_the_restart(tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    first = _serve(tmp_path, port, tmp_path / "first.log", RECON_JOB_PAUSE_AFTER_CLAIM="120")
    try:
        token = login(base, "admin", PASSWORD)
        auth = {"Authorization": f"Bearer {token}"}
        pid = requests.post(
            f"{base}/api/projects", headers=auth, json={"name": "crash"}, timeout=10
        ).json()["id"]
        left = upload(base, token, pid, "left", LEFT)
        right = upload(base, token, pid, "right", RIGHT)
        response = _post_job(base, auth, pid, left, right)
        assert response.status_code == 202, response.text
        jid = response.json()["id"]
        url = f"{base}/api/projects/{pid}/jobs/{jid}"
        # Claimed (committed as running) and its attempt's directory made just after:
        # killing the server between the two would leave no directory to clean up.
        wait_for(
            lambda: (
                requests.get(url, headers=auth, timeout=10).json()["status"] == "running"
                and any((tmp_path / "data").rglob("attempt-*"))
            ),
            30,
            "the job to be claimed",
        )
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
    data = tmp_path / "data"
    assert [p.name for p in data.rglob("attempt-*")] == ["attempt-1"]  # left by the crash
    time.sleep(4)  # the heartbeat is stale by the time the new server starts
    with gunicorn(tmp_path, **SETTINGS) as restarted:
        url = f"{restarted}/api/projects/{pid}/jobs/{jid}"
        done = wait_for(
            lambda: (
                (s := requests.get(url, headers=auth, timeout=10).json())["status"] == "failed"
                and s
            ),
            30,
            "the reaper to fail the job",
        )
        assert done["attempt"] == 1
        assert done["error"] == (
            "The server running the job stopped (no heartbeat for 4 s); nothing was "
            "published. Run the job again."
        )
        assert list(data.rglob("attempt-*")) == []
        again = _post_job(restarted, auth, pid, left, right)
        assert again.status_code == 202, again.text
        new_url = f"{restarted}/api/projects/{pid}/jobs/{again.json()['id']}"
        wait_for(
            lambda: requests.get(new_url, headers=auth, timeout=10).json()["status"] == "succeeded",
            60,
            "the new job to succeed",
        )
