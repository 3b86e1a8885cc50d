"""Query histogram labels, the service-call timer, pool gauges, and app isolation."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool, StaticPool

import instrumentation
from instrumentation import db_query_timer, record_auth_attempt, route_context
from instrumentation.sqla import statement_classifier

Scrape = Callable[..., Any]
DB_COUNT = "reconciliation_db_query_duration_seconds_count"
HTTP_TOTAL = "reconciliation_http_requests_total"


@pytest.mark.parametrize(
    ("statement", "expected"),
    [
        ("SELECT widgets.id FROM widgets WHERE widgets.id = ?", ("select", "widgets")),
        ('INSERT INTO "widgets" (name) VALUES (?)', ("insert", "widgets")),
        ("UPDATE public.widgets SET name=%(n)s", ("update", "widgets")),
        ("DELETE FROM widgets WHERE id = 3", ("delete", "widgets")),
        ("SELECT 1 FROM secrets JOIN widgets ON 1=1", ("select", "widgets")),
        ("SELECT * FROM pg_catalog.pg_class", ("select", "other")),
        ("WITH w AS (SELECT 1) DELETE FROM widgets", ("delete", "widgets")),
        ("SAVEPOINT sa_savepoint_1", ("other", "other")),
        ("  (select name from widgets)", ("select", "widgets")),
    ],
)
def test_statements_map_to_allow_listed_operation_and_table(
    statement: str, expected: tuple[str, str]
) -> None:
    assert statement_classifier(["widgets"])(statement) == expected


def test_queries_carry_the_request_rule_or_the_job_name(
    mini_app_factory: Callable[..., Any], scrape: Scrape
) -> None:
    app, db = mini_app_factory()
    instrumentation.init_app(app, tracing=False)
    client = app.test_client()
    assert client.post("/widgets").status_code == 201
    for _ in range(3):
        assert client.get("/widgets/1").status_code == 200
    with app.app_context():
        with route_context("job:reconcile"):
            db.session.execute(sa.text("SELECT name FROM widgets")).all()
        db.session.execute(sa.text("DELETE FROM widgets WHERE id = 99"))
        db.session.commit()
        with pytest.raises(sa.exc.OperationalError):
            db.session.execute(sa.text("SELECT nope FROM widgets"))
        db.session.rollback()

    exp = scrape(client)
    get = {"route": "/widgets/<int:wid>", "operation": "select", "table": "widgets"}
    assert exp.value(DB_COUNT, **get) == 3
    assert exp.value(DB_COUNT, route="/widgets", operation="insert", table="widgets") == 1
    assert exp.value(DB_COUNT, route="job:reconcile", operation="select", table="widgets") == 1
    assert exp.value(DB_COUNT, route="<none>", operation="delete", table="widgets") == 1
    # The failed statement is timed too, under the route of its caller.
    assert exp.value(DB_COUNT, route="<none>", operation="select", table="widgets") == 1


def test_a_timed_service_call_is_one_observation(
    mini_app_factory: Callable[..., Any], scrape: Scrape
) -> None:
    app, db = mini_app_factory()
    instrumentation.init_app(app, tracing=False)
    with app.app_context(), route_context("cli:report"):
        with db_query_timer("select", "widgets"):
            for _ in range(4):
                db.session.execute(sa.text("SELECT name FROM widgets")).all()
        db.session.rollback()
    exp = scrape(app.test_client())
    labels = {"route": "cli:report", "operation": "select", "table": "widgets"}
    assert exp.value(DB_COUNT, **labels) == 1


def test_init_app_is_idempotent_and_two_apps_do_not_share_series(
    mini_app_factory: Callable[..., Any], scrape: Scrape
) -> None:
    app_a, _ = mini_app_factory()
    app_b, _ = mini_app_factory()
    metrics_a = instrumentation.init_app(app_a, tracing=False)
    assert instrumentation.init_app(app_a, tracing=False) is metrics_a
    instrumentation.init_app(app_b, tracing=False)
    client_a, client_b = app_a.test_client(), app_b.test_client()
    client_a.post("/widgets")
    for _ in range(5):
        client_a.get("/widgets/1")
    client_b.get("/widgets/1")
    with app_a.app_context():
        record_auth_attempt("success")

    labels = {"method": "GET", "route": "/widgets/<int:wid>"}
    a, b = scrape(client_a), scrape(client_b)
    assert a.value(HTTP_TOTAL, status="200", **labels) == 5  # not 10: hooks installed once
    assert b.value(HTTP_TOTAL, status="404", **labels) == 1
    assert b.value(HTTP_TOTAL, status="200", **labels) == 0
    assert a.value("reconciliation_auth_attempts_total", outcome="success") == 1
    assert b.value("reconciliation_auth_attempts_total", outcome="success") == 0


def test_recorders_do_nothing_outside_an_app(
    mini_app_factory: Callable[..., Any], scrape: Scrape
) -> None:
    app, _ = mini_app_factory()
    instrumentation.init_app(app, tracing=False)
    record_auth_attempt("success")  # no app context: must not land anywhere
    with db_query_timer("select", "widgets"):
        pass
    exp = scrape(app.test_client())
    assert exp.value("reconciliation_auth_attempts_total", outcome="success") == 0


@pytest.mark.parametrize("poolclass", [NullPool, StaticPool])
def test_pools_without_counts_report_zero_without_errors(
    mini_app_factory: Callable[..., Any], scrape: Scrape, poolclass: type
) -> None:
    app, db = mini_app_factory("sqlite://", poolclass=poolclass)
    instrumentation.init_app(app, tracing=False)
    exp = scrape(app.test_client())
    assert exp.value("reconciliation_db_pool_connections_active") == 0
    assert exp.value("reconciliation_db_pool_connections_total") == 0


@pytest.mark.postgres
def test_pool_gauges_see_connections_held_out(
    mini_app_factory: Callable[..., Any], scrape: Scrape
) -> None:
    url = os.environ.get("RECON_TEST_DATABASE_URL")
    if not url:
        if os.environ.get("RECON_TEST_REQUIRE_SERVICES") == "1":
            pytest.fail("RECON_TEST_DATABASE_URL is required (RECON_TEST_REQUIRE_SERVICES=1)")
        pytest.skip("PostgreSQL (RECON_TEST_DATABASE_URL) not set")
    # The shared database is left untouched: only SELECT 1 runs on it.
    app, db = mini_app_factory(url, create_schema=False, pool_size=5, max_overflow=0)
    instrumentation.init_app(app, tracing=False)
    client = app.test_client()
    k = 3
    with app.app_context():
        held = [db.engine.connect() for _ in range(k)]
        try:
            for conn in held:
                conn.exec_driver_sql("SELECT 1")
            exp = scrape(client)
            assert exp.value("reconciliation_db_pool_connections_active") == k
            assert exp.value("reconciliation_db_pool_connections_idle") == 0
            assert exp.value("reconciliation_db_pool_connections_total") == k
        finally:
            for conn in held[1:]:
                conn.close()
        exp = scrape(client)
        assert exp.value("reconciliation_db_pool_connections_active") == 1
        assert exp.value("reconciliation_db_pool_connections_idle") == k - 1
        held[0].close()
