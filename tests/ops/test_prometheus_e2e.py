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

import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from tests.instrumentation.conftest import module_redis_url  # noqa: F401 - a fixture
from tests.instrumentation.workers import start_worker, wait_until
from tests.ops.e2e_traffic import (
    TOKEN,
    App,
    app_env,
    drive_degraded,
    drive_main,
    drive_worker,
    start_apps,
    stop,
)
from tests.ops.exprs import (
    PROMETHEUS,
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
from tests.servers import free_port

# Its module-scoped processes are started once: one xdist worker runs the module.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("prometheus-e2e")]


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
