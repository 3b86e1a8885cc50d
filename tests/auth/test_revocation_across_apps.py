"""Two app instances (two pods) on one database and one Redis: a logout in one is seen at once
by the other, although the other had the token cached in its own process."""

import time
import uuid

import pytest

from recon import create_app
from tests.conftest import PASSWORD, Factory, app_config, migrate_schema

pytestmark = pytest.mark.redis


def test_logout_in_one_app_revokes_the_token_in_another(tmp_path, redis_url):
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    channel = f"recon:test:{uuid.uuid4().hex}"
    namespace = f"test-{uuid.uuid4().hex[:12]}:"  # two pods of one deployment share it
    apps = [
        create_app(
            app_config(
                tmp_path / name,
                url,
                RECON_REDIS_URL=redis_url,
                RECON_CACHE_TTL=300,
                RECON_CACHE_NAMESPACE=namespace,
            )
        )
        for name in ("a", "b")
    ]
    for app in apps:
        app.extensions["recon_cache"].channel = channel
    migrate_schema(apps[0])
    with apps[0].app_context():
        Factory(apps[0]).user("pod-user")
    a, b = (app.test_client() for app in apps)
    token = a.post(
        "/api/auth/login", json={"username": "pod-user", "password": PASSWORD}
    ).get_json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    assert b.get("/api/auth/me", headers=headers).status_code == 200  # now in b's L1
    assert a.post("/api/auth/logout", headers=headers).status_code == 204
    deadline = time.monotonic() + 5
    status = b.get("/api/auth/me", headers=headers).status_code
    while status != 401 and time.monotonic() < deadline:
        time.sleep(0.05)
        status = b.get("/api/auth/me", headers=headers).status_code
    assert status == 401
    for app in apps:
        app.extensions["recon_cache"].close()
