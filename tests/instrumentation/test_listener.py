"""The worker's /metrics listener on its own: it serves, stops at once, and a port it can't
have costs the worker its metrics, never its jobs."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from typing import Any

import pytest
import requests
from celery import Celery

import instrumentation
from instrumentation.worker import WorkerTelemetry
from tests.servers import free_port


def telemetry(mini_app_factory: Callable[..., Any], port: int) -> WorkerTelemetry:
    app, _ = mini_app_factory()
    app.config["RECON_WORKER_METRICS_PORT"] = port
    instrumentation.init_app(app, tracing=False)
    return WorkerTelemetry(Celery("listener-test"), app)


def test_it_serves_the_registry_and_stops_without_waiting(
    mini_app_factory: Callable[..., Any],
) -> None:
    port = free_port()
    worker = telemetry(mini_app_factory, port)
    worker.listen(index=0)
    assert worker.listener is not None
    worker.app.test_client().get("/widgets/1")  # something to count
    response = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
    assert response.status_code == 200
    assert 'reconciliation_http_requests_total{method="GET"' in response.text
    assert requests.post(f"http://127.0.0.1:{port}/metrics", timeout=5).status_code == 405
    idle = socket.create_connection(("127.0.0.1", port), timeout=5)
    try:
        started = time.monotonic()
        worker.stop()
        assert time.monotonic() - started < 2
    finally:
        idle.close()
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{port}/metrics", timeout=2)


def test_a_port_in_use_is_logged_and_the_worker_runs_on(
    mini_app_factory: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        worker = telemetry(mini_app_factory, port - 2)
        worker.listen(index=2)  # pool child 2 of a worker whose base port is port - 2
        assert worker.listener is None
    assert f"worker metrics could not listen on 127.0.0.1:{port}" in caplog.text


def test_port_zero_turns_the_listener_off(mini_app_factory: Callable[..., Any]) -> None:
    worker = telemetry(mini_app_factory, 0)
    worker.listen(index=0)
    assert worker.listener is None


def test_a_bad_port_stops_start_up_naming_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    from recon import create_app
    from recon.config import ConfigError

    monkeypatch.setenv("RECON_WORKER_METRICS_PORT", "70000")
    with pytest.raises(ConfigError, match="RECON_WORKER_METRICS_PORT"):
        create_app()
