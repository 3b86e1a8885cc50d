"""End to end: a real Prometheus scrapes running recon apps with the committed scrape
job, and every dashboard and alert expression returns data.

Two apps on loopback ports: ``main`` (SQLite, no Redis: jobs run in-process, so
job metrics come from the web process) and ``degraded`` (Redis URL pointing at a
closed port: cache errors, and 503 for new jobs). Prometheus scrapes both every
second with the bearer token. After the traffic, each expression goes through
Prometheus's HTTP API; alert expressions lose their threshold comparisons first,
so an empty answer means a metric is missing, not that the alert is quiet.
"""

from __future__ import annotations

import io
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from tests.ops.exprs import (
    ALERTS,
    PROMETHEUS,
    REPO,
    Expr,
    alert_exprs,
    alert_rules,
    binary,
    dashboard_exprs,
    strip_thresholds,
    substitute_grafana_variables,
    variable_queries,
)

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
TOKEN = "e2e-metrics-token"
ADMIN_PASSWORD = "e2e admin password 1"
USER_PASSWORD = "e2e user password 1"
RULES = {"passes": [{"name": "exact", "match_on": ["key"], "amount_tolerance": {"absolute": "0"}}]}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(check: Any, what: str, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = check()
        except requests.RequestException:
            value = None
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


@dataclass
class App:
    name: str
    port: int
    env: dict[str, str]
    log: Path
    process: subprocess.Popen[bytes] | None = None
    seen: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def call(self, method: str, path: str, token: str | None = None, **kwargs: Any) -> Any:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = requests.request(method, self.url + path, headers=headers, timeout=30, **kwargs)
        self.seen.append(f"{self.name}: {method} {path} -> {response.status_code}")
        return response

    def login(self, username: str, password: str) -> str:
        response = self.call(
            "POST", "/api/auth/login", json={"username": username, "password": password}
        )
        assert response.status_code == 200, response.text
        return str(response.json()["access_token"])


def app_env(tmp: Path, port: int, **extra: str) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("RECON_", "GUNICORN_", "OTEL_"))
    }
    env.update(
        {
            "RECON_DATABASE_URL": f"sqlite:///{tmp / 'recon.db'}",
            "RECON_DATA_DIR": str(tmp / "data"),
            "RECON_ADMIN_PASSWORD": ADMIN_PASSWORD,
            "RECON_METRICS_TOKEN": TOKEN,
            "RECON_LOG_LEVEL": "WARNING",
            "RECON_BIND_HOST": "127.0.0.1",
            "PORT": str(port),
            "GUNICORN_THREADS": "4",
        }
    )
    env.update(extra)
    return env


def start_apps(apps: list[App]) -> None:
    # Migrations in parallel, then the servers in parallel: start-up dominates the run.
    migrations = [
        subprocess.Popen(
            [str(BIN / "flask"), "--app", "wsgi", "db", "upgrade"],
            cwd=REPO,
            env=app.env,
            stdout=app.log.open("ab"),
            stderr=subprocess.STDOUT,
        )
        for app in apps
    ]
    for app, process in zip(apps, migrations, strict=True):
        assert process.wait(timeout=90) == 0, f"{app.name}: migrations failed\n{tail(app.log)}"
    for app in apps:
        app.process = subprocess.Popen(
            [str(BIN / "gunicorn"), "-c", "ops/gunicorn.conf.py", "wsgi:app"],
            cwd=REPO,
            env=app.env,
            stdout=app.log.open("ab"),
            stderr=subprocess.STDOUT,
        )
    for app in apps:

        def healthy(app: App = app) -> bool:
            assert app.process is not None and app.process.poll() is None, (
                f"{app.name} exited\n{tail(app.log)}"
            )
            return requests.get(app.url + "/api/health", timeout=2).status_code == 200

        wait_until(healthy, f"{app.name} /api/health", timeout=60)


def tail(path: Path, lines: int = 40) -> str:
    return (
        "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""
    )


def stop(process: subprocess.Popen[bytes] | None, sig: int) -> None:
    if process is None or process.poll() is not None:
        return
    process.send_signal(sig)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


def prometheus_config(tmp: Path, targets: list[str]) -> Path:
    """The committed recon job, pointed at the test apps and scraping every second."""
    committed = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    (job,) = committed["scrape_configs"]
    token = tmp / "metrics-token"
    token.write_text(TOKEN)
    job = {k: v for k, v in job.items() if not k.endswith("_sd_configs")}
    job.update(
        {
            "scrape_interval": "1s",
            "scrape_timeout": "1s",
            "authorization": {**job["authorization"], "credentials_file": str(token)},
            "static_configs": [{"targets": targets}],
        }
    )
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(ALERTS)],
        "scrape_configs": [job],
    }
    path = tmp / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    return path


def csv(text: str) -> io.BytesIO:
    return io.BytesIO(text.encode())


def upload(app: App, token: str, pid: int, name: str, body: str) -> Any:
    return app.call(
        "POST",
        f"/api/projects/{pid}/sources",
        token,
        data={"name": name},
        files={"file": (f"{name}.csv", csv(body), "text/csv")},
    )


def run_job(app: App, token: str, pid: int, left: str, right: str) -> Any:
    """Upload two sources and start a job on them; return the POST response."""
    sources = [
        upload(app, token, pid, f"{left[:2]}-{side}", body)
        for side, body in (("left", left), ("right", right))
    ]
    if any(s.status_code != 201 for s in sources):
        return sources[0] if sources[0].status_code != 201 else sources[1]
    return app.call(
        "POST",
        f"/api/projects/{pid}/jobs",
        token,
        json={
            "left_source_id": sources[0].json()["id"],
            "right_source_id": sources[1].json()["id"],
            "rules": RULES,
        },
    )


def wait_for_job(app: App, token: str, pid: int, started: Any) -> str:
    if started.status_code != 202:
        return f"not started ({started.status_code})"
    job_id = started.json()["id"]

    def finished() -> str | None:
        status = app.call("GET", f"/api/projects/{pid}/jobs/{job_id}", token).json()["status"]
        return status if status in {"succeeded", "failed", "cancelled"} else None

    return str(wait_until(finished, f"job {job_id}", timeout=30))


def drive_main(app: App) -> None:
    """Logins of every outcome, project reads (cache misses then hits), denials,
    rejected uploads, a job that succeeds and one that fails."""
    admin = app.login("admin", ADMIN_PASSWORD)
    for name, role in (("viewer1", "viewer"), ("victim1", "analyst")):
        created = app.call(
            "POST",
            "/api/users",
            admin,
            json={"username": name, "password": USER_PASSWORD, "role": role},
        )
        assert created.status_code == 201, created.text
    viewer = app.login("viewer1", USER_PASSWORD)
    project = app.call("POST", "/api/projects", admin, json={"name": "e2e"})
    assert project.status_code == 201, project.text
    pid = project.json()["id"]
    for _ in range(3):  # the first read misses, the next ones hit
        app.call("GET", f"/api/projects/{pid}", admin)
        app.call("GET", "/api/auth/me", admin)
    app.call("GET", "/api/projects", admin)
    app.call("GET", "/api/projects/999999", admin)  # 404
    app.call("GET", "/api/users", viewer)  # admin only: denied
    app.call("POST", "/api/projects", viewer, json={"name": "nope"})  # viewer: denied
    upload(app, admin, pid, "bad", "reference,amount,date\nK9,not-a-number,2024-01-01\n")
    ok = run_job(
        app,
        admin,
        pid,
        "reference,amount,date\nK1,10.00,2024-01-02\n",
        "reference,amount,date,description\nK1,10.00,2024-01-02,right side\n",
    )
    # 3 x 3 rows on one key: 9 candidate pairs, over RECON_MAX_CANDIDATES=2.
    failing = run_job(
        app,
        admin,
        pid,
        "reference,amount,date\nK2,1.00,2024-01-02\nK2,2.00,2024-01-02\nK2,3.00,2024-01-02\n",
        "reference,amount,date\nK2,1.00,2024-01-03\nK2,2.00,2024-01-03\nK2,4.00,2024-01-03\n",
    )
    app.seen.append(
        f"jobs: {wait_for_job(app, admin, pid, ok)}, {wait_for_job(app, admin, pid, failing)}"
    )
    # Failed logins lock victim1; then keep going until the per-IP limit answers 429.
    for _ in range(12):
        if (
            app.call(
                "POST", "/api/auth/login", json={"username": "victim1", "password": "wrong"}
            ).status_code
            == 429
        ):
            break


def drive_degraded(app: App) -> None:
    """Redis unreachable: cache errors, and 503 for a job (the broker is down)."""
    admin = app.login("admin", ADMIN_PASSWORD)
    project = app.call("POST", "/api/projects", admin, json={"name": "e2e-degraded"})
    assert project.status_code == 201, project.text
    pid = project.json()["id"]
    app.call("GET", f"/api/projects/{pid}", admin)
    run_job(
        app,
        admin,
        pid,
        "reference,amount,date\nK1,1.00,2024-01-02\n",
        "reference,amount,date\nK1,1.00,2024-01-03\n",
    )


@dataclass
class Stack:
    prometheus: str
    apps: list[App]

    def query(self, expr: str) -> dict[str, Any]:
        response = requests.get(
            f"{self.prometheus}/api/v1/query", params={"query": expr}, timeout=10
        )
        body: dict[str, Any] = response.json()
        return body

    def traffic(self) -> str:
        return "\n".join(line for app in self.apps for line in app.seen)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    prometheus_bin = binary("prometheus")
    tmp = tmp_path_factory.mktemp("e2e")
    main = App("main", free_port(), {}, tmp / "main.log")
    main.env = app_env(
        tmp / "main",
        main.port,
        RECON_MAX_CANDIDATES="2",
        RECON_LOGIN_RATE_LIMIT="8/minute",
        RECON_LOCKOUT_THRESHOLD="2",
    )
    degraded = App("degraded", free_port(), {}, tmp / "degraded.log")
    degraded.env = app_env(
        tmp / "degraded", degraded.port, RECON_REDIS_URL=f"redis://127.0.0.1:{free_port()}/0"
    )
    apps = [main, degraded]
    web = f"127.0.0.1:{free_port()}"
    config = prometheus_config(tmp, [f"127.0.0.1:{app.port}" for app in apps])
    prometheus = None
    try:
        prometheus = subprocess.Popen(
            [
                prometheus_bin,
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp / 'tsdb'}",
                f"--web.listen-address={web}",
                "--log.level=warn",
            ],
            stdout=(tmp / "prometheus.log").open("wb"),
            stderr=subprocess.STDOUT,
        )
        start_apps(apps)
        wait_until(lambda: requests.get(f"http://{web}/-/ready", timeout=2).ok, "prometheus ready")
        drive_main(main)
        drive_degraded(degraded)
        stack = Stack(f"http://{web}", apps)
        # Two scrapes of every target after the last request.
        done = time.time()

        def scraped() -> bool:
            result = stack.query('timestamp(up{job="recon"})')["data"]["result"]
            return len(result) == len(apps) and all(
                float(r["value"][1]) > done + 1.5 for r in result
            )

        wait_until(scraped, "two scrapes after the traffic", timeout=20)
        yield stack
    finally:
        for app in apps:
            stop(app.process, signal.SIGINT)  # gunicorn: quick shutdown
        stop(prometheus, signal.SIGTERM)


def test_prometheus_scrapes_every_app_with_the_token(stack: Stack) -> None:
    up = stack.query('up{job="recon"}')["data"]["result"]
    assert sorted(r["value"][1] for r in up) == ["1", "1"]
    # ...and the token is what lets it in.
    assert requests.get(stack.apps[0].url + "/api/metrics", timeout=5).status_code == 401


def test_alert_rules_load_and_evaluate_without_errors(stack: Stack) -> None:
    def evaluated() -> list[dict[str, Any]] | None:
        groups = requests.get(f"{stack.prometheus}/api/v1/rules", timeout=5).json()
        rules = [r for g in groups["data"]["groups"] for r in g["rules"]]
        return (
            rules
            if rules
            and all(
                r.get("lastEvaluation", "").startswith("2")
                and not r["lastEvaluation"].startswith("0001")
                for r in rules
            )
            else None
        )

    rules = wait_until(evaluated, "a rule evaluation", timeout=10)
    assert sorted(r["name"] for r in rules) == sorted(r["alert"] for r in alert_rules())
    assert [(r["name"], r.get("lastError")) for r in rules if r["health"] != "ok"] == []


def assert_returns_series(stack: Stack, expr: Expr, promql: str) -> None:
    body = stack.query(promql)
    assert body["status"] == "success", f"{expr.source} is invalid: {body.get('error')}\n{promql}"
    result = body["data"]["result"]
    assert result, (
        f"{expr.source} returned no series:\n{promql}\n\ntraffic driven:\n{stack.traffic()}"
    )


@pytest.mark.parametrize("expr", dashboard_exprs(), ids=lambda e: e.source)
def test_dashboard_expression_returns_data(stack: Stack, expr: Expr) -> None:
    assert_returns_series(stack, expr, substitute_grafana_variables(expr.expr))


@pytest.mark.parametrize("expr", variable_queries(), ids=lambda e: e.source)
def test_dashboard_variable_query_returns_values(stack: Stack, expr: Expr) -> None:
    # label_values(metric, label) is Grafana's; the same question in PromQL:
    metric, label = (
        part.strip()
        for part in expr.expr.removeprefix("label_values(").removesuffix(")").split(",")
    )
    assert_returns_series(stack, expr, f"count by ({label}) ({metric})")


@pytest.mark.parametrize("expr", alert_exprs(), ids=lambda e: e.source)
def test_alert_expression_returns_data(stack: Stack, expr: Expr) -> None:
    assert_returns_series(stack, expr, strip_thresholds(expr.expr))
