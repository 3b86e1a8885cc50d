"""ops/README.md: its commands work on the files in the repo, and it covers deploy,
scale, upgrade (migrations first), rollback and reading the dashboards."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess

import pytest
import yaml

from tests.ops.exprs import DASHBOARDS, OPS, REPO, dashboard_paths, load_dashboard

README = OPS / "README.md"
# kubectl apply keeps the whole object in an annotation limited to 256 KiB.
LAST_APPLIED_LIMIT = 262_144


def readme() -> str:
    return README.read_text(encoding="utf-8")


def section(title: str) -> str:
    match = re.search(rf"^## {title}\n(.*?)(?=^## |\Z)", readme(), re.M | re.S)
    assert match, f"ops/README.md has no '## {title}' section"
    return match.group(1)


def shell_commands(text: str) -> list[str]:
    """Every command in the ```sh blocks of ``text``, continuation lines joined."""
    commands = []
    for block in re.findall(r"```sh\n(.*?)```", text, re.S):
        commands += [c.strip() for c in block.replace("\\\n", " ").splitlines() if c.strip()]
    return commands


def configmap_pipeline() -> list[list[str]]:
    (command,) = [c for c in shell_commands(readme()) if "kubectl create configmap" in c]
    return [shlex.split(stage) for stage in command.split("|")]


def test_configmap_command_names_every_dashboard() -> None:
    create = configmap_pipeline()[0]
    files = [arg.split("=", 1)[1] for arg in create if arg.startswith("--from-file=")]
    assert sorted(files) == sorted(str(p.relative_to(REPO)) for p in dashboard_paths())


def test_configmap_command_builds_a_labelled_configmap() -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl not installed")
    *offline, apply = configmap_pipeline()
    assert apply[:3] == ["kubectl", "apply", "-f"]
    output = ""
    for stage in offline:  # create --dry-run=client and label --local: no cluster needed
        output = subprocess.run(
            [kubectl, *stage[1:]],
            input=output,
            capture_output=True,
            text=True,
            cwd=REPO,
            check=True,
            timeout=60,
        ).stdout
    configmap = yaml.safe_load(output)
    assert configmap["kind"] == "ConfigMap"
    assert configmap["metadata"]["labels"] == {"grafana_dashboard": "1"}
    assert set(configmap["data"]) == {p.name for p in dashboard_paths()}
    for name, body in configmap["data"].items():
        assert yaml.safe_load(body)["uid"] == load_dashboard(DASHBOARDS / name)["uid"]
    assert len(output.encode()) < LAST_APPLIED_LIMIT


@pytest.mark.parametrize("title", ["Deploy", "Scale", "Upgrade", "Rollback", "Grafana"])
def test_readme_covers(title: str) -> None:
    assert len(section(title).split()) > 40


def test_upgrade_runs_the_migration_job_before_the_rollout() -> None:
    commands = shell_commands(section("Upgrade"))
    migrate = next(i for i, c in enumerate(commands) if "component=migrate" in c)
    waited = next(i for i, c in enumerate(commands) if "wait --for=condition=complete" in c)
    rollout = next(i for i, c in enumerate(commands) if c.startswith("kubectl apply -k"))
    deleted = next(i for i, c in enumerate(commands) if "delete job recon-migrate" in c)
    assert deleted < migrate < waited < rollout


def test_migration_selector_picks_only_the_job() -> None:
    documents = [
        d
        for d in yaml.safe_load_all((OPS / "k8s" / "reconciliation-platform.yaml").read_text())
        if d
    ]
    selected = [
        d
        for d in documents
        if d["metadata"].get("labels", {}).get("app.kubernetes.io/component") == "migrate"
    ]
    assert [(d["kind"], d["metadata"]["name"]) for d in selected] == [("Job", "recon-migrate")]


def test_secret_keys_in_the_readme_are_the_ones_the_manifests_use() -> None:
    (create,) = [c for c in shell_commands(section("Deploy")) if "create secret generic" in c]
    documented = set(re.findall(r"--from-literal=([\w-]+)=", create))
    manifests = (OPS / "k8s" / "reconciliation-platform.yaml").read_text()
    manifests += (OPS / "k8s" / "servicemonitor.yaml").read_text()
    used = set(re.findall(r"name: recon-secrets\n\s+key: ([\w-]+)", manifests))
    assert used and documented == used


def test_paths_named_in_the_ops_docs_exist() -> None:
    text = readme() + (OPS / "RUNBOOK.md").read_text(encoding="utf-8")
    paths = set(re.findall(r"\bops/[\w./-]+\.(?:ya?ml|json|md|py)\b", text))
    assert paths
    missing = sorted(p for p in paths if not (REPO / p).exists())
    assert not missing
