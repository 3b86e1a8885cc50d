"""Every error is problem+json with a stable code; nothing leaks a stack trace."""

import pytest

from recon import create_app
from tests.conftest import app_config, migrate_schema

PROBLEM_KEYS = {"type", "title", "status", "detail", "code"}


def assert_problem(response, status, code):
    assert response.status_code == status
    assert response.mimetype == "application/problem+json"
    body = response.get_json()
    assert set(body) >= PROBLEM_KEYS and body["status"] == status and body["code"] == code
    return body


def test_unknown_route_is_404_json(client):
    assert_problem(client.get("/api/nope"), 404, "not_found")
    assert_problem(client.get("/totally/elsewhere"), 404, "not_found")


def test_wrong_method_is_405_with_allow(client):
    response = client.delete("/api/auth/login")
    assert_problem(response, 405, "method_not_allowed")
    assert "POST" in response.headers["Allow"]


def test_malformed_json_is_422(client):
    response = client.post("/api/auth/login", data="{not json", content_type="application/json")
    body = assert_problem(response, 422, "malformed_json")
    assert body["errors"]


def test_body_too_large_is_413(tmp_path):
    app = create_app(app_config(tmp_path, f"sqlite:///{tmp_path / 'x.db'}", RECON_MAX_UPLOAD_MB=1))
    response = app.test_client().post(
        "/api/auth/login", data=b"x" * (1024 * 1024 + 10), content_type="application/json"
    )
    assert_problem(response, 413, "payload_too_large")


def test_uncaught_exception_is_500_with_request_id_and_no_trace(tmp_path):
    app = create_app(app_config(tmp_path, f"sqlite:///{tmp_path / 'x.db'}"))

    @app.route("/api/boom")
    def boom():
        raise RuntimeError("secret internals at /srv/app.py line 3")

    app.view_functions["boom"].public = True
    response = app.test_client().get("/api/boom", headers={"X-Request-ID": "req-123"})
    body = assert_problem(response, 500, "internal_error")
    assert body["request_id"] == "req-123" == response.headers["X-Request-ID"]
    text = response.get_data(as_text=True)
    assert "secret internals" not in text and "Traceback" not in text


def test_database_unreachable_is_503_with_retry_after(tmp_path):
    # A real PostgreSQL URL on a port where nothing listens: the driver fails to connect.
    url = "postgresql+psycopg://postgres@127.0.0.1:1/none"
    app = create_app(app_config(tmp_path, url, RECON_DB_TIMEOUT=1))
    client = app.test_client()
    response = client.get("/api/projects", headers={"Authorization": "Bearer some-token"})
    assert_problem(response, 503, "database_unavailable")
    assert response.headers["Retry-After"] == "5"
    login = client.post("/api/auth/login", json={"username": "a", "password": "b"})
    assert_problem(login, 503, "database_unavailable")
    assert int(login.headers["Retry-After"]) > 0
    ready = client.get("/api/ready")
    assert ready.status_code == 503 and ready.get_json()["database"]["status"] == "down"
    assert client.get("/api/health").status_code == 200


def test_bad_setting_stops_start_up_naming_the_variable(monkeypatch):
    from recon.config import ConfigError

    monkeypatch.setenv("RECON_TOKEN_TTL", "twelve hours")
    with pytest.raises(ConfigError, match="RECON_TOKEN_TTL"):
        create_app()


def test_integrity_error_becomes_409(tmp_path):
    from recon.extensions import db
    from recon.users.models import User

    app = create_app(app_config(tmp_path, f"sqlite:///{tmp_path / 'x.db'}"))
    migrate_schema(app)

    @app.route("/api/dup")
    def dup():
        # Bypasses the service's own check, as a race between two requests would.
        for _ in range(2):
            db.session.add(User(username="same", password_hash="x"))
            db.session.flush()

    app.view_functions["dup"].public = True
    assert_problem(app.test_client().get("/api/dup"), 409, "integrity_error")


def test_debug_is_off(app):
    assert app.debug is False


def test_schema_error_is_500_not_503(tmp_path):
    # No migrations ran: "no such table" is a bug to report, not a database to wait for.
    app = create_app(app_config(tmp_path, f"sqlite:///{tmp_path / 'empty.db'}"))
    response = app.test_client().post("/api/auth/login", json={"username": "a", "password": "b"})
    assert_problem(response, 500, "internal_error")
