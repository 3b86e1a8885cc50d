"""Cancel of a running job interrupts the DuckDB statement it is in, within seconds.

The pass here would take minutes: two 7,000-row sides with one amount, matched on the
amount alone, are 49M candidate pairs (with a candidate limit raised to allow them).
"""

from __future__ import annotations

import io
import time

import pytest

from tests.jobs.conftest import World, job_state
from tests.jobs.pipeline import FINISHED, wait_for

ROWS = 7_000
RULES = {"passes": [{"name": "by amount", "match_on": ["amount"]}], "break_on": []}
HUGE = 10**12
CANCELLED_WITHIN = 10  # seconds, on a loaded 2-core machine


def same_amounts(prefix: str) -> str:
    lines = ["Reference,Amount,Date"]
    lines += [f"{prefix}{i},100.00,2024-01-01" for i in range(ROWS)]
    return "\n".join(lines) + "\n"


def upload(client, pid: int, name: str) -> int:
    data = {"name": name, "file": (io.BytesIO(same_amounts(name).encode()), f"{name}.csv")}
    response = client.post(
        f"/api/projects/{pid}/sources", data=data, content_type="multipart/form-data"
    )
    assert response.status_code == 201, response.get_json()
    return int(response.get_json()["id"])


def cancel_mid_pass(client, pid: int, left: int, right: int, state) -> tuple[dict, float]:
    """Start the job, cancel it once it is inside the pass; its end state and the wait."""
    body = {"left_source_id": left, "right_source_id": right, "rules": RULES}
    response = client.post(f"/api/projects/{pid}/jobs", json=body)
    assert response.status_code == 202, response.get_json()
    jid = response.get_json()["id"]
    wait_for(lambda: state(jid)["status"] == "running", 60, "the job to start")
    time.sleep(4)  # loading 2 x 7,000 rows takes well under this: the join is running
    running = state(jid)
    assert running["status"] == "running", running
    cancelled = client.post(f"/api/projects/{pid}/jobs/{jid}/cancel")
    assert cancelled.status_code == 200, cancelled.get_json()
    asked = time.monotonic()
    done = wait_for(lambda: (s := state(jid))["status"] in FINISHED and s, 60, "the job to end")
    return done, time.monotonic() - asked


def test_cancel_interrupts_a_running_pass_on_the_thread_runner(world_at) -> None:
    world: World = world_at(RECON_MAX_CANDIDATES=HUGE)
    left, right = upload(world.client, world.pid, "L"), upload(world.client, world.pid, "R")
    done, waited = cancel_mid_pass(world.client, world.pid, left, right, world.job)
    assert done["status"] == "cancelled" and done["error"] == "cancelled"
    assert waited < CANCELLED_WITHIN, f"cancelled after {waited:.1f} s"
    assert world.attempt_dirs() == []
    tmp = world.app.extensions["recon_storage"].tmp_dir
    assert list(tmp.iterdir()) == []  # no spill files left


@pytest.mark.slow
@pytest.mark.redis
@pytest.mark.postgres
def test_cancel_interrupts_a_running_pass_on_a_celery_worker(world) -> None:
    world["start_worker"](RECON_MAX_CANDIDATES=str(HUGE))
    client, pid = world["client"], world["pid"]
    left, right = upload(client, pid, "L"), upload(client, pid, "R")
    done, waited = cancel_mid_pass(client, pid, left, right, lambda j: job_state(world, j))
    assert done["status"] == "cancelled"
    assert waited < CANCELLED_WITHIN, f"cancelled after {waited:.1f} s"
    data = world["app"].extensions["recon_storage"]
    assert list(data.root.rglob("attempt-*")) == []
    assert list(data.tmp_dir.iterdir()) == []
