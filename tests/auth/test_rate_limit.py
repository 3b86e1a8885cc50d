from recon import create_app
from tests.conftest import app_config, migrate_schema


def _limited_app(tmp_path, **overrides):
    app = create_app(
        app_config(
            tmp_path,
            f"sqlite:///{tmp_path / 'rl.db'}",
            RECON_LOGIN_RATE_LIMIT="3/minute",
            **overrides,
        )
    )
    migrate_schema(app)
    return app


def test_login_is_limited_per_ip_with_retry_after(tmp_path):
    client = _limited_app(tmp_path).test_client()
    body = {"username": "x", "password": "y"}
    statuses = [client.post("/api/auth/login", json=body).status_code for _ in range(4)]
    assert statuses == [401, 401, 401, 429]
    limited = client.post("/api/auth/login", json=body)
    assert limited.mimetype == "application/problem+json"
    assert limited.get_json()["code"] == "rate_limited"
    assert int(limited.headers["Retry-After"]) > 0
    # Another address has its own budget.
    other = client.post("/api/auth/login", json=body, environ_base={"REMOTE_ADDR": "10.0.0.9"})
    assert other.status_code == 401


def test_limit_uses_redis_storage_when_configured(tmp_path, redis_url):
    app = _limited_app(tmp_path, RECON_REDIS_URL=redis_url)
    assert app.config["RATELIMIT_STORAGE_URI"] == redis_url
    client = app.test_client()
    body = {"username": "x", "password": "y"}
    statuses = [client.post("/api/auth/login", json=body).status_code for _ in range(4)]
    assert statuses[-1] == 429
    # A second app on the same Redis and key prefix shares the count (as pods would).
    twin = create_app(
        app_config(
            tmp_path,
            f"sqlite:///{tmp_path / 'rl.db'}",
            RECON_LOGIN_RATE_LIMIT="3/minute",
            RECON_REDIS_URL=redis_url,
            RATELIMIT_KEY_PREFIX=app.config["RATELIMIT_KEY_PREFIX"],
        )
    )
    assert twin.test_client().post("/api/auth/login", json=body).status_code == 429
