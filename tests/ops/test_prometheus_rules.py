"""Prometheus config, alert and SLO rules: promtool accepts them, the unit tests fire and
do not fire each alert, and every alert says how severe it is and where its runbook is."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.ops.exprs import (
    PROMETHEUS,
    RULE_FILES,
    RULE_TESTS,
    RUNBOOK,
    SERIES_NAMES,
    alert_rules,
    binary,
    known_series,
    metric_names,
    recording_rules,
    rules,
    strip_thresholds,
)

# DESIGN.md section 11 and issue 7: the alerts and the threshold each must use.
REQUIRED_ALERTS = {
    "ReconDBQueryLatencyHigh": ("reconciliation_db_query_duration_seconds_bucket", "> 0.2"),
    "ReconCacheHitRateLow": ("reconciliation_cache_hits_total", "< 0.6"),
    "ReconDBPoolSaturated": ("reconciliation_db_pool_connections_active", "> 0.85"),
    "ReconHTTP5xxRatioHigh": ("reconciliation_http_requests_total", "> 0.01"),
    "ReconJobsFailing": ("reconciliation_jobs_total", ""),
    # Issue 17: jobs, workers, and burn rates on the two SLOs (burn rate x budget).
    "ReconJobQueueWaitHigh": ("reconciliation_job_queue_wait_seconds_bucket", "> 300"),
    "ReconWorkersAbsent": ('up{job="recon-worker"}', "absent("),
    "ReconAvailabilityBudgetBurnFast": ("recon:slo_availability_errors:ratio_rate1h", "> 0.0144"),
    "ReconAvailabilityBudgetBurnSlow": ("recon:slo_availability_errors:ratio_rate3d", "> 0.001"),
    "ReconLatencyBudgetBurnFast": ("recon:slo_latency_slow:ratio_rate1h", "> 0.144"),
    "ReconLatencyBudgetBurnSlow": ("recon:slo_latency_slow:ratio_rate3d", "> 0.01"),
}
# The SRE workbook's pairs: (long window, short window, burn rate) per severity.
BURN_WINDOWS = {
    "Fast": [("1h", "5m", 14.4), ("6h", "30m", 6)],
    "Slow": [("1d", "2h", 3), ("3d", "6h", 1)],
}
BUDGETS = {
    "Availability": ("recon:slo_availability_errors", 0.001),
    "Latency": ("recon:slo_latency_slow", 0.01),
}


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [binary("promtool"), *args], capture_output=True, text=True, timeout=60, check=False
    )


@pytest.mark.parametrize("path", RULE_FILES, ids=lambda p: p.name)
def test_promtool_check_rules(path: Path) -> None:
    result = promtool("check", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    count = len([rule for name, rule in rules() if name == path.name])
    assert f"SUCCESS: {count} rules found" in result.stdout


@pytest.mark.parametrize("path", RULE_TESTS, ids=lambda p: p.name)
def test_promtool_unit_tests_pass(path: Path) -> None:
    result = promtool("test", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_unit_tests_fire_and_silence_every_alert() -> None:
    fired: set[str] = set()
    quiet: set[str] = set()
    for path in RULE_TESTS:
        for test in yaml.safe_load(path.read_text())["tests"]:
            for case in test.get("alert_rule_test", []):
                (fired if case["exp_alerts"] else quiet).add(case["alertname"])
    names = {rule["alert"] for rule in alert_rules()}
    assert fired == names
    assert quiet == names


@pytest.mark.parametrize("slo", sorted(BUDGETS))
@pytest.mark.parametrize("speed", sorted(BURN_WINDOWS))
def test_burn_rate_alerts_have_the_workbook_windows_and_thresholds(slo: str, speed: str) -> None:
    (rule,) = [r for r in alert_rules() if r["alert"] == f"Recon{slo}BudgetBurn{speed}"]
    recorded, budget = BUDGETS[slo]
    expr = " ".join(rule["expr"].split())
    for long, short, burn in BURN_WINDOWS[speed]:
        threshold = f"{burn * budget:g}"
        long_window = f"{recorded}:ratio_rate{long} > {threshold}"
        pair = f"{long_window} and {recorded}:ratio_rate{short} > {threshold}"
        assert pair in expr
    assert rule["labels"]["severity"] == ("critical" if speed == "Fast" else "warning")


def test_every_window_the_slo_alerts_read_is_recorded() -> None:
    recorded = {rule["record"] for rule in recording_rules()}
    used = {name for rule in alert_rules() for name in metric_names(rule["expr"])}
    assert {name for name in used if name.startswith("recon:")} <= recorded
    for rule in recording_rules():
        assert metric_names(rule["expr"]) <= SERIES_NAMES, rule["record"]


def test_promtool_check_config(tmp_path: Path) -> None:
    # promtool opens credentials_file; point it at a real file, keep everything else.
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    token = tmp_path / "metrics-token"
    token.write_text("test-token\n")
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert sorted(jobs) == ["recon", "recon-worker"]
    assert jobs["recon"]["metrics_path"] == "/api/metrics"
    assert jobs["recon-worker"]["metrics_path"] == "/metrics"
    assert [c["port"] for c in jobs["recon-worker"]["dns_sd_configs"]] == [9464]
    assert config["global"]["scrape_interval"] == "15s"
    for job in jobs.values():
        assert job["authorization"]["type"] == "Bearer"
        assert job.get("scrape_interval", "15s") == "15s"
        job["authorization"]["credentials_file"] = str(token)
    assert config["rule_files"] == [path.name for path in RULE_FILES]
    for path in RULE_FILES:
        shutil.copy(path, tmp_path / path.name)
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    result = promtool("check", "config", str(tmp_path / "prometheus.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    for path in RULE_FILES:
        count = len([rule for name, rule in rules() if name == path.name])
        assert f"SUCCESS: {count} rules found" in result.stdout


def runbook_anchors() -> set[str]:
    """GitHub's heading anchors: lower-cased, punctuation dropped, spaces to hyphens."""
    anchors = set()
    for line in RUNBOOK.read_text(encoding="utf-8").splitlines():
        heading = re.match(r"^#{1,6}\s+(.*)$", line)
        if heading:
            slug = re.sub(r"[^\w\- ]", "", heading.group(1).strip().lower())
            anchors.add(slug.replace(" ", "-"))
    return anchors


def runbook_section(alert: str) -> str:
    text = RUNBOOK.read_text(encoding="utf-8")
    match = re.search(rf"^## {alert}\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert match, f"RUNBOOK.md has no '## {alert}' section"
    return match.group(1)


@pytest.mark.parametrize("rule", alert_rules(), ids=lambda r: r["alert"])
def test_alert_is_complete_and_linked_to_its_runbook(rule: dict) -> None:
    assert re.fullmatch(r"\d+[smh]", rule["for"]) and rule["for"] != "0m"
    assert rule["labels"]["severity"] in {"warning", "critical"}
    for key in ("summary", "description", "runbook_url"):
        assert rule["annotations"][key].strip()
    path, _, anchor = rule["annotations"]["runbook_url"].partition("#")
    assert path.endswith("ops/RUNBOOK.md")
    assert anchor in runbook_anchors()
    section = runbook_section(rule["alert"]).lower()
    for part in ("what it means", "what to check", "what to do"):
        assert part in section, f"RUNBOOK.md {rule['alert']} lacks '{part}'"


@pytest.mark.parametrize("name", sorted(REQUIRED_ALERTS))
def test_required_alert_uses_its_threshold(name: str) -> None:
    (rule,) = [r for r in alert_rules() if r["alert"] == name]
    metric, threshold = REQUIRED_ALERTS[name]
    assert metric in rule["expr"]
    assert threshold in " ".join(rule["expr"].split())


@pytest.mark.parametrize("rule", alert_rules(), ids=lambda r: r["alert"])
def test_alert_uses_only_exported_metric_names(rule: dict) -> None:
    names = metric_names(rule["expr"])
    assert names, "an alert on no recon metric"
    assert names <= known_series(), names - known_series()


@pytest.mark.parametrize(
    "expr, stripped",
    [
        ("a > 0.2 and b > 0.1", "a and b"),
        ("(x / y) < 0.6\nand\nz > 0", "(x / y)\nand\nz"),
        (
            "histogram_quantile(0.95, sum by (le) (rate(m[5m]))) > 0.2",
            "histogram_quantile(0.95, sum by (le) (rate(m[5m])))",
        ),
        ('m{le="0.1", s!="5"} >= 1e-3', 'm{le="0.1", s!="5"}'),
    ],
)
def test_strip_thresholds_keeps_the_left_hand_side(expr: str, stripped: str) -> None:
    # The end-to-end test relies on this to tell "metric missing" from "alert quiet".
    assert strip_thresholds(expr) == stripped
