from recon import create_app
from tests.conftest import app_config


def test_security_headers_on_every_response(client):
    for response in (
        client.get("/api/health"),
        client.get("/api/nope"),
        client.post("/api/auth/login", json={}),
    ):
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["X-Frame-Options"] == "DENY"
        assert "default-src 'none'" in response.headers["Content-Security-Policy"]
        assert response.headers["Cache-Control"] == "no-store"
        assert response.headers["X-Request-ID"]


def test_cors_only_for_configured_origins(tmp_path):
    app = create_app(
        app_config(
            tmp_path,
            f"sqlite:///{tmp_path / 'c.db'}",
            RECON_CORS_ORIGINS=["https://ui.example.com"],
        )
    )
    client = app.test_client()
    allowed = client.get("/api/health", headers={"Origin": "https://ui.example.com"})
    assert allowed.headers["Access-Control-Allow-Origin"] == "https://ui.example.com"
    denied = client.get("/api/health", headers={"Origin": "https://evil.example.com"})
    assert "Access-Control-Allow-Origin" not in denied.headers
    preflight = client.options(
        "/api/projects",
        headers={"Origin": "https://ui.example.com", "Access-Control-Request-Method": "POST"},
    )
    assert preflight.status_code == 204
    assert "Authorization" in preflight.headers["Access-Control-Allow-Headers"]
    bad_preflight = client.options(
        "/api/projects",
        headers={"Origin": "https://evil.example.com", "Access-Control-Request-Method": "POST"},
    )
    assert bad_preflight.status_code == 403


def test_health_and_ready(client):
    assert client.get("/api/health").get_json() == {"status": "ok"}
    ready = client.get("/api/ready").get_json()
    assert ready["status"] == "ok" and ready["database"] == {"status": "ok"}
    assert ready["redis"] == {"status": "not_configured"}


def test_ready_reports_redis_down_as_degraded_but_stays_ready(tmp_path, app):
    config = app_config(
        tmp_path, app.config["RECON_DATABASE_URL"], RECON_REDIS_URL="redis://127.0.0.1:1/0"
    )
    response = create_app(config).test_client().get("/api/ready")
    assert response.status_code == 200
    assert response.get_json()["redis"]["status"] == "degraded"


def test_openapi_is_generated_from_the_schemas(client):
    spec = client.get("/api/openapi.json").get_json()
    assert spec["info"]["title"] == "recon"
    login = spec["paths"]["/api/auth/login"]["post"]
    assert "requestBody" in login
    schemas = spec["components"]["schemas"]
    assert {"username", "password"} <= set(schemas["Login"]["properties"])
    assert "/api/projects/{pid}/members" in spec["paths"]
    assert client.get("/api/docs").status_code == 200


def test_create_user_command(app, factory):
    from recon.extensions import db
    from recon.users.models import User

    runner = app.test_cli_runner()
    result = runner.invoke(
        args=["create-user", "cli-admin", "--role", "admin", "--password-stdin"],
        input="a long password here\n",
    )
    assert result.exit_code == 0, result.output
    assert db.session.query(User).filter_by(username="cli-admin").one().role == "admin"
    again = runner.invoke(
        args=["create-user", "cli-admin", "--password-stdin"], input="a long password here\n"
    )
    assert again.exit_code != 0 and "taken" in again.output
