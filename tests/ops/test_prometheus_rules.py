"""Prometheus config and alert rules: promtool accepts them, the unit tests fire and
do not fire each alert, and every alert says how severe it is and where its runbook is."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.ops.exprs import (
    ALERTS,
    PROMETHEUS,
    RUNBOOK,
    SERIES_NAMES,
    alert_rules,
    binary,
    metric_names,
    strip_thresholds,
)

# DESIGN.md section 11 and issue 7: the alerts and the threshold each must use.
REQUIRED_ALERTS = {
    "ReconDBQueryLatencyHigh": ("reconciliation_db_query_duration_seconds_bucket", "> 0.2"),
    "ReconCacheHitRateLow": ("reconciliation_cache_hits_total", "< 0.6"),
    "ReconDBPoolSaturated": ("reconciliation_db_pool_connections_active", "> 0.85"),
    "ReconHTTP5xxRatioHigh": ("reconciliation_http_requests_total", "> 0.01"),
    "ReconJobsFailing": ("reconciliation_jobs_total", ""),
}


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [binary("promtool"), *args], capture_output=True, text=True, timeout=60, check=False
    )


def test_promtool_check_rules() -> None:
    result = promtool("check", "rules", str(ALERTS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(alert_rules())} rules found" in result.stdout


def test_promtool_unit_tests_pass() -> None:
    result = promtool("test", "rules", str(PROMETHEUS / "alerts_test.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_unit_tests_fire_and_silence_every_alert() -> None:
    tests = yaml.safe_load((PROMETHEUS / "alerts_test.yml").read_text())["tests"]
    fired: set[str] = set()
    quiet: set[str] = set()
    for test in tests:
        for case in test.get("alert_rule_test", []):
            (fired if case["exp_alerts"] else quiet).add(case["alertname"])
    names = {rule["alert"] for rule in alert_rules()}
    assert fired == names
    assert quiet == names


def test_promtool_check_config(tmp_path: Path) -> None:
    # promtool opens credentials_file; point it at a real file, keep everything else.
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    token = tmp_path / "metrics-token"
    token.write_text("test-token\n")
    (job,) = config["scrape_configs"]
    assert job["metrics_path"] == "/api/metrics"
    assert job["authorization"]["type"] == "Bearer"
    assert config["global"]["scrape_interval"] == "15s"
    assert job.get("scrape_interval", "15s") == "15s"
    job["authorization"]["credentials_file"] = str(token)
    shutil.copy(ALERTS, tmp_path / "alerts.yml")
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    result = promtool("check", "config", str(tmp_path / "prometheus.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 5 rules found" in result.stdout


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
    assert names <= SERIES_NAMES, names - SERIES_NAMES


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
