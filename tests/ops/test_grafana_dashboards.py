"""The Grafana dashboards parse, read their Prometheus from the `datasource` variable,
query only metrics recon exports, and carry the panels DESIGN.md section 11 lists."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.ops.exprs import (
    DASHBOARDS,
    OPS,
    dashboard_exprs,
    dashboard_paths,
    known_series,
    load_dashboard,
    metric_names,
    panels,
    substitute_grafana_variables,
)

DATASOURCE = "${datasource}"


def test_the_three_dashboards_exist() -> None:
    assert [p.name for p in dashboard_paths()] == [
        "api-metrics.json",
        "db-cache-metrics.json",
        "jobs-metrics.json",
    ]
    uids = [load_dashboard(p)["uid"] for p in dashboard_paths()]
    assert len(set(uids)) == len(uids)


@pytest.mark.parametrize("path", dashboard_paths(), ids=lambda p: p.name)
def test_dashboard_has_a_prometheus_datasource_variable(path: Path) -> None:
    dashboard = load_dashboard(path)
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    # Imported files would otherwise ask for a datasource input that provisioning lacks.
    assert "__inputs" not in dashboard
    assert dashboard["uid"] and dashboard["title"]


@pytest.mark.parametrize("path", dashboard_paths(), ids=lambda p: p.name)
def test_every_panel_and_target_uses_the_datasource_variable(path: Path) -> None:
    dashboard = load_dashboard(path)
    for panel in panels(dashboard):
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": DATASOURCE}, panel["title"]
        assert panel["targets"], f"{panel['title']} has no query"
        for target in panel["targets"]:
            assert target["datasource"] == {"type": "prometheus", "uid": DATASOURCE}
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            assert variable["datasource"]["uid"] == DATASOURCE


@pytest.mark.parametrize("path", dashboard_paths(), ids=lambda p: p.name)
def test_panels_do_not_overlap(path: Path) -> None:
    taken: set[tuple[int, int]] = set()
    for panel in panels(load_dashboard(path)):
        pos = panel["gridPos"]
        assert pos["x"] + pos["w"] <= 24, panel["title"]
        cells = {
            (x, y)
            for x in range(pos["x"], pos["x"] + pos["w"])
            for y in range(pos["y"], pos["y"] + pos["h"])
        }
        assert not cells & taken, f"{panel['title']} overlaps another panel"
        taken |= cells
    ids = [panel["id"] for panel in panels(load_dashboard(path))]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("expr", dashboard_exprs(), ids=lambda e: e.source)
def test_every_expression_queries_exported_metrics(expr: Any) -> None:
    names = metric_names(expr.expr)
    assert names, f"{expr.source} queries no recon metric"
    assert names <= known_series(), f"{expr.source}: unknown {sorted(names - known_series())}"
    # Every variable it uses is one the evaluation knows how to fill in.
    assert "$" not in substitute_grafana_variables(expr.expr)


def panel_by_title(name: str, pattern: str) -> dict[str, Any]:
    matches = [
        p for p in panels(load_dashboard(DASHBOARDS / name)) if re.search(pattern, p["title"], re.I)
    ]
    assert len(matches) == 1, f"{name}: expected one panel matching {pattern!r}"
    return matches[0]


def thresholds(panel: dict[str, Any]) -> list[float | None]:
    steps = panel["fieldConfig"]["defaults"]["thresholds"]["steps"]
    return [step["value"] for step in steps]


def test_db_cache_dashboard_has_the_seed_panels() -> None:
    name = "db-cache-metrics.json"
    latency = panel_by_title(name, r"DB query duration p50 / p95 / p99")
    assert latency["type"] == "stat"
    assert [t["expr"].split(",")[0] for t in latency["targets"]] == [
        "histogram_quantile(0.50",
        "histogram_quantile(0.95",
        "histogram_quantile(0.99",
    ]
    assert thresholds(latency)[-1] == 0.2
    hit_rate = panel_by_title(name, r"^Cache hit rate$")
    assert hit_rate["type"] == "stat" and 0.8 in thresholds(hit_rate)
    pool = panel_by_title(name, r"pool utilisation")
    assert pool["type"] == "stat" and thresholds(pool)[-1] == 0.85
    assert "reconciliation_db_pool_connections_active" in pool["targets"][0]["expr"]
    for title in (r"hits by key type", r"misses by key type"):
        assert "by (key_type" in panel_by_title(name, title)["targets"][0]["expr"]
    pool_stats = panel_by_title(name, r"^DB pool connections$")
    assert {t["legendFormat"] for t in pool_stats["targets"]} == {"active", "idle", "total"}
    heatmap = panel_by_title(name, r"heatmap")
    assert heatmap["type"] == "heatmap"
    assert heatmap["targets"][0]["format"] == "heatmap"
    assert "$route" in heatmap["targets"][0]["expr"]


def test_api_dashboard_has_rate_errors_latency_auth_and_the_slos() -> None:
    name = "api-metrics.json"
    expected = {
        r"Request rate": "reconciliation_http_requests_total",
        r"Error rate": 'status=~"[45].."',
        r"Latency p50": "histogram_quantile(0.50",
        r"Latency p99": "histogram_quantile(0.99",
        r"Login attempts": "reconciliation_auth_attempts_total",
        r"Availability: error ratio": "recon:slo_availability_errors:ratio_rate1h",
        r"Latency: slow ratio": "recon:slo_latency_slow:ratio_rate1h",
    }
    for title, needle in expected.items():
        exprs = " ".join(t["expr"] for t in panel_by_title(name, title)["targets"])
        assert needle in exprs, title
    assert thresholds(panel_by_title(name, r"Availability: error ratio"))[-1] == 0.001
    assert thresholds(panel_by_title(name, r"Latency: slow ratio"))[-1] == 0.01
    burn = panel_by_title(name, r"burn rate")
    assert [t["expr"] for t in burn["targets"]] == [
        "recon:slo_availability_errors:ratio_rate1h / 0.001",
        "recon:slo_latency_slow:ratio_rate1h / 0.01",
    ]


def test_jobs_dashboard_has_throughput_failures_quantiles_backlog_and_records() -> None:
    name = "jobs-metrics.json"
    expected = {
        r"Jobs finished per minute": "reconciliation_jobs_total",
        r"failure ratio": 'reconciliation_jobs_total{status="failed"}',
        r"^Backlog$": "reconciliation_jobs_backlog",
        r"Jobs queued": "reconciliation_jobs_backlog",
        r"Oldest queued": "reconciliation_jobs_oldest_queued_age_seconds",
        r"Workers scraped": 'up{job="recon-worker"}',
        r"Records processed per second": "reconciliation_records_processed_total",
        r"Worker DB query": 'route=~"task:.*"',
    }
    for title, needle in expected.items():
        assert needle in panel_by_title(name, title)["targets"][0]["expr"], title
    for title, metric in (
        (r"Queue wait", "reconciliation_job_queue_wait_seconds_bucket"),
        (r"Job duration", "reconciliation_job_duration_seconds_bucket"),
    ):
        exprs = [t["expr"] for t in panel_by_title(name, title)["targets"]]
        assert [e.split(",")[0] for e in exprs] == [
            "histogram_quantile(0.50",
            "histogram_quantile(0.95",
            "histogram_quantile(0.99",
        ]
        assert all(metric in e for e in exprs), title
    assert (
        "reconciliation_engine_duration_seconds_bucket"
        in (panel_by_title(name, r"Engine duration")["targets"][0]["expr"])
    )


def test_provisioning_points_at_a_file_provider() -> None:
    provisioning = OPS / "grafana" / "provisioning"
    dashboards = yaml.safe_load((provisioning / "dashboards.yaml").read_text())
    (provider,) = dashboards["providers"]
    assert dashboards["apiVersion"] == 1
    assert provider["type"] == "file" and provider["options"]["path"]
    datasources = yaml.safe_load((provisioning / "datasources.yaml").read_text())
    assert [d["type"] for d in datasources["datasources"]] == ["prometheus"]
