"""The shipped gunicorn config serving wsgi:app: every scrape reports exactly N."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[2]
GUNICORN = Path(sys.executable).with_name("gunicorn")
HTTP_TOTAL = "reconciliation_http_requests_total"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_gunicorn(
    tmp: Path, *extra: str, env_extra: dict[str, str] | None = None
) -> tuple[subprocess.Popen[str], str, Path]:
    port = free_port()
    log = tmp / "gunicorn.log"
    env = {
        **os.environ,
        "PORT": str(port),
        "RECON_BIND_HOST": "127.0.0.1",
        "RECON_DATABASE_URL": f"sqlite:///{tmp / 'x.db'}",
        "RECON_DATA_DIR": str(tmp / "data"),
        "RECON_REDIS_URL": "",
        "RECON_ADMIN_PASSWORD": "",
        "RECON_METRICS_TOKEN": "",
        "GUNICORN_THREADS": "4",
        "PYTHONPATH": str(ROOT),
        **(env_extra or {}),
    }
    with log.open("w") as out:
        proc = subprocess.Popen(  # noqa: S603 - fixed argv
            [str(GUNICORN), "-c", "ops/gunicorn.conf.py", *extra, "wsgi:app"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"gunicorn exited: {log.read_text()}")
            try:
                if requests.get(f"{base}/api/metrics", timeout=5).status_code == 200:
                    return proc, base, log
            except requests.RequestException:
                time.sleep(0.2)
        pytest.fail(f"gunicorn did not start: {log.read_text()}")
    except BaseException:
        # Never leave a server behind, whatever went wrong while waiting for it.
        stop(proc)
        raise


def stop(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=35)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    proc, base, _ = start_gunicorn(tmp_path)
    try:
        yield base
    finally:
        stop(proc)


def count(text: str, route: str) -> float:
    total = 0.0
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == HTTP_TOTAL and s.labels.get("route") == route:
                total += s.value
    return total


@pytest.mark.slow
def test_every_scrape_reports_exactly_n_requests(server: str) -> None:
    n = 200
    with ThreadPoolExecutor(max_workers=8) as pool, requests.Session() as session:
        statuses = list(
            pool.map(lambda _: session.get(f"{server}/api/health").status_code, range(n))
        )
    assert statuses == [200] * n
    for _ in range(5):
        scrape = requests.get(f"{server}/api/metrics", timeout=5)
        assert scrape.status_code == 200
        assert count(scrape.text, "/api/health") == n


@pytest.mark.slow
def test_more_than_one_worker_logs_that_metrics_are_per_process(tmp_path: Path) -> None:
    proc, _, log = start_gunicorn(tmp_path, env_extra={"GUNICORN_WORKERS": "2"})
    stop(proc)
    text = log.read_text()
    assert "2 worker processes" in text and text.count("Booting worker") == 2
    assert "metrics are per process" in text
