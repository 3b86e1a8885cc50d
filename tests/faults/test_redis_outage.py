"""Redis stopped and started again under traffic: reads keep answering, a job POST is a
503 with Retry-After while it is down, and everything recovers without a restart."""

from __future__ import annotations

import time

import pytest
import requests

from tests.faults.services import private_redis
from tests.faults.traffic import Traffic, login, upload
from tests.servers import gunicorn

pytestmark = [pytest.mark.slow, pytest.mark.redis]
PASSWORD = "fault-tests-password"
LEFT = "Reference,Amount,Date\nA1,10.00,2024-01-01\nA2,20.00,2024-01-02\n"
RIGHT = "Reference,Amount,Date\nA1,10.00,2024-01-01\nB2,20.00,2024-01-02\n"
RULES = {"passes": [{"name": "exact", "match_on": ["key"]}]}


def _post_job(base: str, token: str, pid: int, left: int, right: int) -> requests.Response:
    return requests.post(
        f"{base}/api/projects/{pid}/jobs",
        headers={"Authorization": f"Bearer {token}"},
        json={"left_source_id": left, "right_source_id": right, "rules": RULES},
        timeout=30,
    )


def test_redis_outage_under_traffic(tmp_path):
    with (
        private_redis() as redis,
        gunicorn(
            tmp_path,
            RECON_REDIS_URL=redis.url,
            RECON_ADMIN_PASSWORD=PASSWORD,
            RECON_LOG_LEVEL="WARNING",
        ) as base,
    ):
        token = login(base, "admin", PASSWORD)
        auth = {"Authorization": f"Bearer {token}"}
        pid = requests.post(
            f"{base}/api/projects", headers=auth, json={"name": "outage"}, timeout=10
        ).json()["id"]
        left = upload(base, token, pid, "left", LEFT)
        right = upload(base, token, pid, "right", RIGHT)
        urls = [f"/api/projects/{pid}", f"/api/projects/{pid}/sources", "/api/auth/me"]
        with Traffic(base, token, urls) as traffic:
            time.sleep(1.0)
            redis.stop()
            down = time.monotonic()
            time.sleep(0.5)
            refused = _post_job(base, token, pid, left, right)
            assert refused.status_code == 503, refused.text
            assert refused.json()["code"] == "queue_unavailable"
            assert int(refused.headers["Retry-After"]) > 0
            # Logging in still works (rate limits fall back to memory).
            assert login(base, "admin", PASSWORD)
            ready = requests.get(f"{base}/api/ready", timeout=10)
            assert ready.status_code == 200 and ready.json()["redis"]["status"] != "ok"
            time.sleep(2.0)
            up = time.monotonic()
            redis.start()
            # The breaker tries Redis again after its cooldown (5 s): no restart needed.
            deadline = time.monotonic() + 30
            while True:
                accepted = _post_job(base, token, pid, left, right)
                if accepted.status_code == 202 or time.monotonic() > deadline:
                    break
                time.sleep(0.5)
            assert accepted.status_code == 202, accepted.text
            assert requests.get(f"{base}/api/ready", timeout=10).json()["redis"]["status"] == "ok"
            time.sleep(0.5)
        during = traffic.between(down, up)
        after = traffic.between(up, time.monotonic())
        assert len(during) >= 20 and len(after) >= 5
        assert {status for _, _, status, _ in during} == {200}, during[:5]
        assert {status for _, _, status, _ in after} == {200}
        # Reads never waited on the dead Redis for long (socket timeouts + breaker).
        slow = [(round(t - down, 2), url, round(s, 3)) for t, url, _, s in during if s >= 2.0]
        assert not slow, slow
