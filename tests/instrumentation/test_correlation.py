"""Without a trace exporter every request still has a trace id for its log line."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import pytest
from flask import Response, jsonify, request
from flask.testing import FlaskClient

import instrumentation
from instrumentation import current_span_id, current_trace_id

HEX32 = re.compile(r"^[0-9a-f]{32}$")
UPSTREAM_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
UPSTREAM = f"00-{UPSTREAM_TRACE}-00f067aa0ba902b7-01"


@pytest.fixture
def no_exporter(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)


@pytest.mark.usefixtures("no_exporter")
def test_each_request_gets_its_own_trace_id_and_keeps_an_upstream_one(
    mini_app_factory: Callable[..., Any],
) -> None:
    app, _ = mini_app_factory()

    @app.get("/ids")
    def ids() -> Any:
        return jsonify(trace_id=current_trace_id(), span_id=current_span_id())

    instrumentation.init_app(app)
    client = app.test_client()
    first = client.get("/ids").get_json()
    second = client.get("/ids").get_json()
    assert HEX32.match(first["trace_id"]) and HEX32.match(second["trace_id"])
    assert first["trace_id"] != second["trace_id"]
    assert first["span_id"] != second["span_id"]

    # A caller's W3C trace context is continued, so its trace id reaches our logs.
    joined = client.get("/ids", headers={"traceparent": UPSTREAM}).get_json()
    assert joined["trace_id"] == UPSTREAM_TRACE
    assert joined["span_id"] != "00f067aa0ba902b7"
    assert current_trace_id() is None  # nothing leaks past the request


@pytest.mark.usefixtures("no_exporter")
def test_a_request_refused_before_the_view_still_has_a_trace_id(
    mini_app_factory: Callable[..., Any],
) -> None:
    app, _ = mini_app_factory()

    # Like recon's auth guard: a before_request hook registered before init_app.
    @app.before_request
    def refuse() -> Response | None:
        return Response(status=401) if request.path == "/private" else None

    @app.after_request
    def log_line(response: Response) -> Response:
        # recon's access log line is written here too.
        response.headers["X-Trace"] = current_trace_id() or ""
        return response

    instrumentation.init_app(app)
    response = app.test_client().get("/private")
    assert response.status_code == 401
    assert HEX32.match(response.headers["X-Trace"])


def test_the_access_log_line_carries_trace_and_request_ids(
    client: FlaskClient, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    response = client.get("/api/auth/me", headers={"X-Request-ID": "corr-test-1"})
    assert response.status_code == 401
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith("{")]
    access = [x for x in lines if x.get("logger") == "recon.access" and x.get("status") == 401]
    assert access, lines
    assert access[-1]["request_id"] == "corr-test-1"
    assert HEX32.match(access[-1]["trace_id"])
