"""/api/metrics on the recon app: names, types, label sets and exact counts.

The app is shared by the session, so each test compares a scrape taken before
its own traffic with one taken after.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)

from instrumentation import (
    record_engine_duration,
    record_job,
    record_job_error,
    record_queue_wait,
    record_rate_limited,
    record_records_processed,
    record_upload_rejected,
)
from recon.auth.passwords import hash_password
from recon.cache import CacheService
from recon.db_types import utcnow
from recon.extensions import db

Scrape = Callable[..., Any]

HTTP_TOTAL = "reconciliation_http_requests_total"
HTTP_COUNT = "reconciliation_http_request_duration_seconds_count"
DB_COUNT = "reconciliation_db_query_duration_seconds_count"

# name -> (type, label keys); DESIGN.md section 10.
EXPECTED = {
    "reconciliation_db_query_duration_seconds": ("histogram", {"route", "operation", "table"}),
    "reconciliation_cache_hits": ("counter", {"cache_level", "key_type"}),
    "reconciliation_cache_misses": ("counter", {"cache_level", "key_type"}),
    "reconciliation_cache_errors": ("counter", {"cache_level"}),
    "reconciliation_db_pool_connections_active": ("gauge", set()),
    "reconciliation_db_pool_connections_idle": ("gauge", set()),
    "reconciliation_db_pool_connections_total": ("gauge", set()),
    "reconciliation_http_requests": ("counter", {"method", "route", "status"}),
    "reconciliation_http_request_duration_seconds": ("histogram", {"method", "route"}),
    "reconciliation_auth_attempts": ("counter", {"outcome"}),
    "reconciliation_authz_denied": ("counter", {"reason"}),
    "reconciliation_rate_limited": ("counter", set()),
    "reconciliation_upload_rejected": ("counter", {"reason"}),
    "reconciliation_jobs": ("counter", {"status"}),
    "reconciliation_job_errors": ("counter", {"step"}),
    "reconciliation_job_duration_seconds": ("histogram", set()),
    "reconciliation_records_processed": ("counter", {"side"}),
    "reconciliation_job_queue_wait_seconds": ("histogram", set()),
    "reconciliation_engine_duration_seconds": ("histogram", set()),
    "reconciliation_jobs_backlog": ("gauge", {"status"}),
    "reconciliation_jobs_oldest_queued_age_seconds": ("gauge", set()),
}


def test_n_requests_add_exactly_n_under_the_url_rule(client: FlaskClient, scrape: Scrape) -> None:
    before = scrape(client)
    n = 7
    for pid in range(1, n + 1):
        assert client.get(f"/api/projects/{pid}").status_code == 401
    after = scrape(client)

    rule = "/api/projects/<int:pid>"
    labels = {"method": "GET", "route": rule, "status": "401"}
    assert after.value(HTTP_TOTAL, **labels) - before.value(HTTP_TOTAL, **labels) == n
    count = {"method": "GET", "route": rule}
    assert after.value(HTTP_COUNT, **count) - before.value(HTTP_COUNT, **count) == n
    routes = after.label_values("reconciliation_http_requests", "route")
    assert rule in routes
    assert not any(route.startswith("/api/projects/1") for route in routes)


def test_unmatched_paths_share_one_route_value(client: FlaskClient, scrape: Scrape) -> None:
    before = scrape(client)
    for path in ("/api/nope", "/api/nope/2", "/favicon.ico"):
        assert client.get(path).status_code == 404
    after = scrape(client)

    labels = {"method": "GET", "route": "<unmatched>", "status": "404"}
    assert after.value(HTTP_TOTAL, **labels) - before.value(HTTP_TOTAL, **labels) == 3
    assert "/api/nope" not in after.label_values("reconciliation_http_requests", "route")


def test_every_metric_has_its_type_and_labels_after_a_realistic_scenario(
    app: Flask, client: FlaskClient, factory: Any, scrape: Scrape
) -> None:
    user = factory.user()
    user.password_hash = hash_password("s3cret-pass")
    db.session.commit()
    project = factory.project()  # the user is not a member: 404 and authz_denied

    login = client.post("/api/auth/login", json={"username": user.username, "password": "nope"})
    assert login.status_code == 401
    login = client.post(
        "/api/auth/login", json={"username": user.username, "password": "s3cret-pass"}
    )
    assert login.status_code == 200
    headers = {"Authorization": f"Bearer {login.get_json()['access_token']}"}
    assert client.get("/api/auth/me", headers=headers).status_code == 200
    assert client.get("/api/auth/me", headers=headers).status_code == 200  # cache hit
    assert client.get(f"/api/projects/{project.id}", headers=headers).status_code == 404
    assert client.get("/api/projects", headers=headers).status_code == 200

    # Features that land later (jobs, uploads, the limiter) record through these.
    with app.app_context():
        record_job("succeeded", 2.5)
        record_job_error("publish")
        now = utcnow()
        record_queue_wait(attempt=1, queued_at=now, claimed_at=now)
        record_engine_duration(1.5)
        record_records_processed("left", 10)
        record_upload_rejected("too_large")
        record_rate_limited()
        dead = CacheService(
            "redis://127.0.0.1:1/0", metrics=app.extensions["recon_metrics"], breaker_threshold=1
        )
        assert dead.get_or_set("project:1", lambda: {"id": 1}) == {"id": 1}
        dead.close()

    exposition = scrape(client)
    for name, (kind, keys) in EXPECTED.items():
        assert name in exposition.families, f"{name} missing"
        family = exposition.families[name]
        assert family.type == kind, name
        assert exposition.label_keys(name) == {frozenset(keys)}, name
    assert (
        exposition.value("reconciliation_cache_hits_total", cache_level="l1", key_type="user") >= 1
    )
    assert exposition.value("reconciliation_auth_attempts_total", outcome="failure") >= 1
    assert exposition.value("reconciliation_authz_denied_total", reason="not_member") >= 1
    assert exposition.value("reconciliation_cache_errors_total", cache_level="l2") >= 1
    assert (
        exposition.value(DB_COUNT, route="/api/projects", operation="select", table="projects") >= 1
    )
    assert "otel_scope_name" not in exposition.text
    assert "target_info" not in exposition.families


def test_openmetrics_is_served_when_asked_for(client: FlaskClient) -> None:
    client.get("/api/health")
    response = client.get(
        "/api/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"}
    )
    assert response.status_code == 200
    assert response.content_type.startswith("application/openmetrics-text")
    text = response.get_data(as_text=True)
    assert text.rstrip().endswith("# EOF")
    names = {family.name for family in openmetrics_families(text)}
    assert "reconciliation_http_requests" in names

    plain = client.get("/api/metrics", headers={"Accept": "text/plain"})
    assert plain.content_type.startswith("text/plain; version=0.0.4")
    assert "# EOF" not in plain.get_data(as_text=True)


def test_metrics_token_is_required_when_configured(
    app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(app.config, "RECON_METRICS_TOKEN", "scrape-secret")
    for header in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic scrape-secret"}):
        response = client.get("/api/metrics", headers=header)
        assert response.status_code == 401
        assert response.content_type == "application/problem+json"
        body = json.loads(response.get_data(as_text=True))
        assert set(body) == {"type", "title", "status", "detail", "code"}
        assert body["status"] == 401
        assert "reconciliation_" not in response.get_data(as_text=True)
    ok = client.get("/api/metrics", headers={"Authorization": "Bearer scrape-secret"})
    assert ok.status_code == 200
    assert "reconciliation_http_requests_total" in ok.get_data(as_text=True)


def test_promtool_finds_nothing_but_the_seed_mandated_gauge_name(
    client: FlaskClient, promtool: str
) -> None:
    client.get("/api/health")
    client.get("/api/nope")
    text = client.get("/api/metrics").get_data(as_text=True)
    result = subprocess.run(  # noqa: S603 - fixed argv, our own exposition on stdin
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, check=False
    )
    problems = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    assert problems, "expected promtool to flag the _total gauge name (seed-mandated)"
    assert all(p.startswith("reconciliation_db_pool_connections_total") for p in problems), problems
