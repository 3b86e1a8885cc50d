"""PostgreSQL stopped and started again under traffic: 503 with Retry-After while it is
down (liveness stays up, readiness fails), normal answers again once it is back, with no
restart. The database is a private cluster started by the test, never the shared one."""

from __future__ import annotations

import time

import pytest
import requests

from tests.faults.services import private_postgres
from tests.faults.traffic import Traffic, login
from tests.servers import gunicorn

pytestmark = [pytest.mark.slow, pytest.mark.postgres]
PASSWORD = "fault-tests-password"


def test_postgres_outage_under_traffic(tmp_path):
    with (
        private_postgres() as pg,
        gunicorn(
            tmp_path,
            RECON_DATABASE_URL=pg.url,
            RECON_ADMIN_PASSWORD=PASSWORD,
            RECON_DB_TIMEOUT="1",
            RECON_LOG_LEVEL="WARNING",
        ) as base,
    ):
        token = login(base, "admin", PASSWORD)
        auth = {"Authorization": f"Bearer {token}"}
        pid = requests.post(
            f"{base}/api/projects", headers=auth, json={"name": "pg outage"}, timeout=10
        ).json()["id"]
        urls = [f"/api/projects/{pid}", "/api/projects", "/api/auth/me"]
        with Traffic(base, token, urls) as traffic:
            time.sleep(1.0)
            pg.stop()
            down = time.monotonic()
            time.sleep(3.0)
            assert requests.get(f"{base}/api/health", timeout=10).status_code == 200
            ready = requests.get(f"{base}/api/ready", timeout=10)
            assert ready.status_code == 503 and ready.headers["Retry-After"]
            up = time.monotonic()  # before the start: a request from here on may see it up
            pg.start()
            deadline = up + 30
            while time.monotonic() < deadline:
                if requests.get(f"{base}/api/ready", timeout=10).status_code == 200:
                    break
                time.sleep(0.3)
            recovered = time.monotonic()
            time.sleep(1.0)
        during = traffic.between(down + 0.5, up)
        assert len(during) >= 5
        # Never a 500 and never a hang: a 503 with Retry-After, or an answer the cache
        # still holds (the token and the project's membership are cached).
        assert {status for _, _, status, _ in during} <= {200, 503}
        listing = {status for _, url, status, _ in during if url == "/api/projects"}
        assert listing == {503}
        assert max(seconds for *_, seconds in during) < 5
        after = traffic.between(recovered, time.monotonic())
        assert after and {status for _, _, status, _ in after} == {200}
        assert recovered - up < 15
        # Writes work again too: the pool dropped its dead connections.
        created = requests.post(
            f"{base}/api/projects", headers=auth, json={"name": "after"}, timeout=10
        )
        assert created.status_code == 201, created.text
