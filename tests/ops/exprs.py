"""What the ops checks share: the repo's ops files, the metric names recon exports, and
the PromQL expressions found in the dashboards and the alert rules."""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.conftest import missing_service

REPO = Path(__file__).resolve().parents[2]
OPS = REPO / "ops"
K8S = OPS / "k8s"
DASHBOARDS = OPS / "grafana" / "dashboards"
PROMETHEUS = OPS / "prometheus"
ALERTS = PROMETHEUS / "alerts.yml"
SLO = PROMETHEUS / "slo.yml"
RULE_FILES = (ALERTS, SLO)
# promtool unit tests, each a file of its own step: alerts.yml's, and slo.yml's
# fast-burn (1 min) and slow-burn (5 min) alerts.
RULE_TESTS = tuple(
    PROMETHEUS / name for name in ("alerts_test.yml", "slo_test.yml", "slo_slow_test.yml")
)
RUNBOOK = OPS / "RUNBOOK.md"

# DESIGN.md section 10: the names exactly as exported.
COUNTERS = frozenset(
    {
        "reconciliation_cache_hits_total",
        "reconciliation_cache_misses_total",
        "reconciliation_cache_errors_total",
        "reconciliation_http_requests_total",
        "reconciliation_auth_attempts_total",
        "reconciliation_authz_denied_total",
        "reconciliation_rate_limited_total",
        "reconciliation_upload_rejected_total",
        "reconciliation_jobs_total",
        "reconciliation_records_processed_total",
    }
)
GAUGES = frozenset(
    {
        "reconciliation_db_pool_connections_active",
        "reconciliation_db_pool_connections_idle",
        "reconciliation_db_pool_connections_total",
    }
)
HISTOGRAMS = frozenset(
    {
        "reconciliation_db_query_duration_seconds",
        "reconciliation_http_request_duration_seconds",
        "reconciliation_job_duration_seconds",
        "reconciliation_job_queue_wait_seconds",
        "reconciliation_engine_duration_seconds",
    }
)
SERIES_NAMES = (
    COUNTERS
    | GAUGES
    | {"reconciliation_jobs_backlog", "reconciliation_jobs_oldest_queued_age_seconds"}
    | {f"{name}{suffix}" for name in HISTOGRAMS for suffix in ("_bucket", "_sum", "_count")}
)
# The one series Prometheus itself records that recon's rules read: whether a
# target answered its scrape (ReconWorkersAbsent, the workers panel).
SCRAPE_SERIES = frozenset({"up"})

_METRIC = re.compile(r"\breconciliation_[a-z0-9_]+\b")
_RECORDED = re.compile(r"\brecon:[a-z0-9_]+:[a-z0-9_]+\b")
_UP = re.compile(r"\bup\{")
_ABSENT = re.compile(r"^\s*absent\((.*)\)\s*$", re.S)
# A comparison against a number literal: the threshold of an alert or a guard.
_THRESHOLD = re.compile(r"\s*(?:==|!=|>=|<=|>|<)\s*(?:bool\s+)?-?\d+(?:\.\d+)?(?:e-?\d+)?(?![\w.])")
_VARIABLE = re.compile(r"\$(?:\{(\w+)(?::\w+)?\}|(\w+))")

# Values a Grafana would put in for its variables, for evaluating outside Grafana.
GRAFANA_VARIABLES = {
    "__rate_interval": "1m",
    "__interval": "15s",
    "__range": "5m",
    "route": ".*",
}


@dataclass(frozen=True)
class Expr:
    """One PromQL expression and where it comes from (for failure messages)."""

    source: str
    expr: str


def metric_names(expr: str) -> set[str]:
    """Return every series name ``expr`` reads: recon's, the recording rules', ``up``."""
    return (
        set(_METRIC.findall(expr))
        | set(_RECORDED.findall(expr))
        | ({"up"} if _UP.search(expr) else set())
    )


def unwrap_absent(expr: str) -> str:
    """Return what ``absent(X)`` asks about (X), or ``expr`` itself.

    An absent() alert returns data only while it fires; what the end-to-end test
    must see is that X, the thing whose absence it watches, is there.
    """
    match = _ABSENT.match(expr)
    return match.group(1) if match else expr


def strip_thresholds(expr: str) -> str:
    """Return ``expr`` without its comparisons to number literals.

    ``a > 0.2 and b > 0.1`` becomes ``a and b``: evaluated, it returns series as
    long as the metrics exist, whatever their values, so an empty answer means
    a metric is missing rather than that the alert is quiet.
    """
    return _THRESHOLD.sub("", expr)


def substitute_grafana_variables(expr: str) -> str:
    """Return ``expr`` with Grafana's variables replaced; KeyError names an unknown one."""

    def replace(match: re.Match[str]) -> str:
        return GRAFANA_VARIABLES[match.group(1) or match.group(2)]

    return _VARIABLE.sub(replace, expr)


def load_dashboard(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def dashboard_paths() -> list[Path]:
    return sorted(DASHBOARDS.glob("*.json"))


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Yield every panel, including those nested in collapsed rows."""
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def dashboard_exprs() -> list[Expr]:
    """Return every target expression of every dashboard."""
    found = []
    for path in dashboard_paths():
        for panel in panels(load_dashboard(path)):
            for target in panel.get("targets", []):
                source = f"{path.name} / {panel['title']} / {target.get('refId')}"
                found.append(Expr(source, target["expr"]))
    return found


def variable_queries() -> list[Expr]:
    """Return the label_values() queries of the dashboards' query variables."""
    found = []
    for path in dashboard_paths():
        for variable in load_dashboard(path)["templating"]["list"]:
            if variable["type"] == "query":
                query = variable["query"]
                text = query["query"] if isinstance(query, dict) else query
                found.append(Expr(f"{path.name} / variable {variable['name']}", text))
    return found


def rules() -> list[tuple[str, dict[str, Any]]]:
    """Every rule of every rule file, with the file's name."""
    found = []
    for path in RULE_FILES:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
        found += [(path.name, rule) for group in document["groups"] for rule in group["rules"]]
    return found


def alert_rules() -> list[dict[str, Any]]:
    return [rule for _, rule in rules() if "alert" in rule]


def recording_rules() -> list[dict[str, Any]]:
    return [rule for _, rule in rules() if "record" in rule]


def alert_exprs() -> list[Expr]:
    return [
        Expr(f"{name} / {rule['alert']}", rule["expr"]) for name, rule in rules() if "alert" in rule
    ]


def recording_exprs() -> list[Expr]:
    return [
        Expr(f"{name} / {rule['record']}", rule["expr"])
        for name, rule in rules()
        if "record" in rule
    ]


def known_series() -> frozenset[str]:
    """What an expression may read: exported series, recorded ones, ``up``."""
    return SERIES_NAMES | SCRAPE_SERIES | {rule["record"] for rule in recording_rules()}


def binary(path: str) -> str:
    """Return the path of a required executable: skip without it, or fail when
    RECON_TEST_REQUIRE_SERVICES=1."""
    found = shutil.which(path)
    if found is None or not os.access(found, os.X_OK):
        missing_service(f"{path} (Debian package prometheus)")
    return str(found)
