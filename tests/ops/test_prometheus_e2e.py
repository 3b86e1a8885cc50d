"""End to end: a real Prometheus scrapes running recon apps and a real Celery worker with
the committed scrape jobs, and every dashboard, recording and alert expression returns data.

Two apps on loopback ports: ``main`` (SQLite, no Redis: jobs run in-process, so
job metrics come from the web process) and ``degraded`` (Redis URL pointing at a
closed port: cache errors, and 503 for new jobs); and a Celery worker (prefork,
one child, the real Redis) running jobs posted by an app in this process, so its
job metrics come from its own listener. Prometheus scrapes all three every
second with the bearer token and evaluates the committed rule files. After the
traffic, each expression goes through Prometheus's HTTP API; alert expressions
lose their threshold comparisons first (and an ``absent(X)`` is asked about
X), so an empty answer means a metric is missing, not that the alert is quiet.
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

from tests.instrumentation.conftest import module_redis_url  # noqa: F401 - a fixture
from tests.instrumentation.workers import (
    FAILING_LEFT,
    FAILING_RIGHT,
    FAILING_RULES,
    WorkerRun,
    start_worker,
)
from tests.ops.exprs import (
    PROMETHEUS,
    REPO,
    RULE_FILES,
    Expr,
    alert_exprs,
    binary,
    dashboard_exprs,
    recording_exprs,
    rules,
    strip_thresholds,
    substitute_grafana_variables,
    unwrap_absent,
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


def prometheus_config(tmp: Path, targets: dict[str, list[str]]) -> Path:
    """The committed jobs, pointed at the test's processes and scraping every second."""
    committed = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    token = tmp / "metrics-token"
    token.write_text(TOKEN)
    jobs = []
    for job in committed["scrape_configs"]:
        job = {k: v for k, v in job.items() if not k.endswith("_sd_configs")}
        job.update(
            {
                "scrape_interval": "1s",
                "scrape_timeout": "1s",
                "authorization": {**job["authorization"], "credentials_file": str(token)},
                "static_configs": [{"targets": targets[job["job_name"]]}],
            }
        )
        jobs.append(job)
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(path) for path in RULE_FILES],
        "scrape_configs": jobs,
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


def drive_worker(worker: WorkerRun) -> list[str]:
    """A job the worker finishes and one that fails in its engine."""
    ok = worker.post_and_wait(
        "reference,amount,date\nW1,3.00,2024-02-01\n",
        "reference,amount,date,description\nW1,3.00,2024-02-01,worker\n",
        RULES,
    )
    failing = worker.post_and_wait(FAILING_LEFT, FAILING_RIGHT, FAILING_RULES)
    return [f"worker: job {ok[0]} {ok[1]}", f"worker: job {failing[0]} {failing[1]}"]


@dataclass
class Stack:
    prometheus: str
    apps: list[App]
    worker_seen: list[str] = field(default_factory=list)

    def query(self, expr: str) -> dict[str, Any]:
        response = requests.get(
            f"{self.prometheus}/api/v1/query", params={"query": expr}, timeout=10
        )
        body: dict[str, Any] = response.json()
        return body

    def traffic(self) -> str:
        return "\n".join([*(line for app in self.apps for line in app.seen), *self.worker_seen])


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, module_redis_url: str) -> Iterator[Stack]:  # noqa: F811
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
    prometheus = None
    # First: a worker takes the longest to start, and it starts while the apps do.
    worker = start_worker(tmp_path_factory.mktemp("e2e-worker"), module_redis_url, token=TOKEN)
    config = prometheus_config(
        tmp,
        {
            "recon": [f"127.0.0.1:{app.port}" for app in apps],
            "recon-worker": [f"127.0.0.1:{worker.port}"],
        },
    )
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
        worker.wait_for_metrics()
        stack = Stack(f"http://{web}", apps, drive_worker(worker))
        # Two scrapes of every target after the last request.
        done = time.time()

        def scraped() -> bool:
            result = stack.query("timestamp(up)")["data"]["result"]
            return len(result) == len(apps) + 1 and all(
                float(r["value"][1]) > done + 1.5 for r in result
            )

        wait_until(scraped, "two scrapes after the traffic", timeout=20)
        yield stack
    finally:
        for app in apps:
            stop(app.process, signal.SIGINT)  # gunicorn: quick shutdown
        worker.close()
        stop(prometheus, signal.SIGTERM)


def test_prometheus_scrapes_every_app_and_the_worker_with_the_token(stack: Stack) -> None:
    up = stack.query('up{job="recon"}')["data"]["result"]
    assert sorted(r["value"][1] for r in up) == ["1", "1"]
    (worker,) = stack.query('up{job="recon-worker"}')["data"]["result"]
    assert worker["value"][1] == "1"
    # ...and the token is what lets it in.
    assert requests.get(stack.apps[0].url + "/api/metrics", timeout=5).status_code == 401
    # The worker's jobs are the worker's: counted by its own listener, exactly.
    jobs = stack.query('reconciliation_jobs_total{job="recon-worker"}')["data"]["result"]
    assert {r["metric"]["status"]: r["value"][1] for r in jobs} == {"succeeded": "1", "failed": "1"}
    task = 'job="recon-worker", route="task:recon.run_job"'
    queries = stack.query(f"reconciliation_db_query_duration_seconds_count{{{task}}}")
    assert queries["data"]["result"]


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

    loaded = wait_until(evaluated, "a rule evaluation", timeout=10)
    names = [rule.get("alert") or rule["record"] for _, rule in rules()]
    assert sorted(r["name"] for r in loaded) == sorted(names)
    assert [(r["name"], r.get("lastError")) for r in loaded if r["health"] != "ok"] == []


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


@pytest.mark.parametrize("expr", recording_exprs(), ids=lambda e: e.source)
def test_recording_expression_returns_data(stack: Stack, expr: Expr) -> None:
    assert_returns_series(stack, expr, expr.expr)


@pytest.mark.parametrize("expr", alert_exprs(), ids=lambda e: e.source)
def test_alert_expression_returns_data(stack: Stack, expr: Expr) -> None:
    assert_returns_series(stack, expr, unwrap_absent(strip_thresholds(expr.expr)))
