"""The Kubernetes manifests validate offline against the API schemas and carry the
numbers DESIGN.md section 11 fixes (replicas, scaling, budgets, resources)."""

from __future__ import annotations

import shutil
import subprocess
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.ops.exprs import K8S

# Oldest Kubernetes we claim to run on, and the newest the validator ships.
SCHEMA_VERSIONS = ("1.30", kubernetes_validate.latest_version())
CORE_FILE = K8S / "reconciliation-platform.yaml"
NAMESPACE = "reconciliation-platform"
GUNICORN_GRACEFUL_TIMEOUT = 30  # ops/gunicorn.conf.py


def documents(path: Any) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]


CORE = documents(CORE_FILE)


def one(kind: str, name: str) -> dict[str, Any]:
    matches = [d for d in CORE if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(matches) == 1, f"expected one {kind}/{name}, found {len(matches)}"
    return matches[0]


def workloads() -> list[dict[str, Any]]:
    return [d for d in CORE if d["kind"] in {"Deployment", "Job"}]


@pytest.mark.parametrize("version", SCHEMA_VERSIONS)
@pytest.mark.parametrize(
    "resource", CORE, ids=[f"{d['kind']}/{d['metadata']['name']}" for d in CORE]
)
def test_every_core_resource_validates_strictly(resource: dict[str, Any], version: str) -> None:
    # SchemaNotFoundError (an unknown kind or apiVersion) fails too: nothing is skipped.
    kubernetes_validate.validate(resource, version, strict=True)


def test_strict_validation_rejects_a_misspelt_field() -> None:
    web = one("Deployment", "recon-web")
    broken = yaml.safe_load(yaml.safe_dump(web))
    broken["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, SCHEMA_VERSIONS[0], strict=True)


def test_everything_lives_in_the_namespace() -> None:
    namespace = one("Namespace", NAMESPACE)
    assert namespace["metadata"]["name"] == NAMESPACE
    for doc in CORE:
        if doc["kind"] != "Namespace":
            assert doc["metadata"]["namespace"] == NAMESPACE, doc["metadata"]["name"]


def test_hpa_scales_web_between_2_and_10_on_cpu_and_memory() -> None:
    hpa = one("HorizontalPodAutoscaler", "recon-web")
    assert hpa["apiVersion"] == "autoscaling/v2"
    spec = hpa["spec"]
    assert spec["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "recon-web",
    }
    assert (spec["minReplicas"], spec["maxReplicas"]) == (2, 10)
    targets = {m["resource"]["name"]: m["resource"]["target"] for m in spec["metrics"]}
    assert targets == {
        "cpu": {"type": "Utilization", "averageUtilization": 70},
        "memory": {"type": "Utilization", "averageUtilization": 80},
    }
    up = spec["behavior"]["scaleUp"]
    assert up["selectPolicy"] == "Max"
    assert sorted((p["type"], p["value"], p["periodSeconds"]) for p in up["policies"]) == [
        ("Percent", 100, 30),
        ("Pods", 2, 30),
    ]
    down = spec["behavior"]["scaleDown"]
    assert down["stabilizationWindowSeconds"] == 300
    assert [(p["type"], p["value"], p["periodSeconds"]) for p in down["policies"]] == [
        ("Percent", 50, 60),
    ]
    # A fixed replica count would fight the HPA on every apply.
    assert "replicas" not in one("Deployment", "recon-web")["spec"]


def test_hpa_scales_workers_between_1_and_10_on_cpu() -> None:
    hpa = one("HorizontalPodAutoscaler", "recon-worker")
    spec = hpa["spec"]
    assert spec["scaleTargetRef"]["name"] == "recon-worker"
    assert spec["scaleTargetRef"]["kind"] == "Deployment"
    assert (spec["minReplicas"], spec["maxReplicas"]) == (1, 10)
    assert [m["resource"]["name"] for m in spec["metrics"]] == ["cpu"]
    assert spec["metrics"][0]["resource"]["target"]["averageUtilization"] == 70
    # A worker removed mid-part costs that part a redelivery: scale down slowly, one at a time.
    down = spec["behavior"]["scaleDown"]
    assert down["stabilizationWindowSeconds"] >= 600
    assert [(p["type"], p["value"]) for p in down["policies"]] == [("Pods", 1)]
    assert "replicas" not in one("Deployment", "recon-worker")["spec"]
    # Parts of one job meet on the shared volume: it must be ReadWriteMany.
    assert one("PersistentVolumeClaim", "recon-data")["spec"]["accessModes"] == ["ReadWriteMany"]


def test_pdb_keeps_one_web_pod() -> None:
    pdb = one("PodDisruptionBudget", "recon-web")
    assert pdb["apiVersion"] == "policy/v1"
    assert pdb["spec"]["minAvailable"] == 1
    web = one("Deployment", "recon-web")
    assert pdb["spec"]["selector"]["matchLabels"] == web["spec"]["selector"]["matchLabels"]


def test_web_pod_resources_probes_and_shutdown() -> None:
    pod = one("Deployment", "recon-web")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["resources"] == {
        "requests": {"cpu": "200m", "memory": "256Mi"},
        "limits": {"cpu": "500m", "memory": "512Mi"},
    }
    assert container["command"] == ["gunicorn", "-c", "ops/gunicorn.conf.py", "wsgi:app"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/api/health"
    assert container["readinessProbe"]["httpGet"]["path"] == "/api/ready"
    sleep = container["lifecycle"]["preStop"]["exec"]["command"]
    assert sleep[0] == "sleep"
    # SIGKILL must come after the preStop sleep and gunicorn's graceful drain.
    assert pod["terminationGracePeriodSeconds"] > GUNICORN_GRACEFUL_TIMEOUT + int(sleep[1])


@pytest.mark.parametrize("workload", workloads(), ids=lambda d: d["metadata"]["name"])
def test_pods_run_locked_down(workload: dict[str, Any]) -> None:
    pod = workload["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    mounts_by_volume = {v["name"]: v for v in pod["volumes"]}
    for container in pod["containers"]:
        context = container["securityContext"]
        assert context["readOnlyRootFilesystem"] is True
        assert context["allowPrivilegeEscalation"] is False
        assert context["capabilities"]["drop"] == ["ALL"]
        tmp = [m for m in container["volumeMounts"] if m["mountPath"] == "/tmp"]
        assert len(tmp) == 1 and "emptyDir" in mounts_by_volume[tmp[0]["name"]]


@pytest.mark.parametrize("workload", workloads(), ids=lambda d: d["metadata"]["name"])
def test_secrets_are_referenced_never_inlined(workload: dict[str, Any]) -> None:
    (container,) = workload["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e for e in container["env"]}
    assert env["RECON_DATABASE_URL"]["valueFrom"]["secretKeyRef"]["name"] == "recon-secrets"
    if workload["metadata"]["name"] == "recon-web":
        # Every web pod signs the workspace's CSRF tokens with the same key.
        assert env["RECON_SECRET_KEY"]["valueFrom"]["secretKeyRef"]["key"] == "secret-key"
    for name in (
        "RECON_DATABASE_URL",
        "RECON_REDIS_URL",
        "RECON_METRICS_TOKEN",
        "RECON_SECRET_KEY",
    ):
        if name in env:
            assert "value" not in env[name], f"{name} must come from the Secret"
    assert not [d for d in CORE if d["kind"] == "Secret"], "no Secret values in the repo"


def test_web_and_worker_share_the_rwx_data_volume() -> None:
    pvc = one("PersistentVolumeClaim", "recon-data")
    assert pvc["spec"]["accessModes"] == ["ReadWriteMany"]
    data_dir = one("ConfigMap", "recon-config")["data"]["RECON_DATA_DIR"]
    for name in ("recon-web", "recon-worker"):
        pod = one("Deployment", name)["spec"]["template"]["spec"]
        claims = {
            v["name"]
            for v in pod["volumes"]
            if v.get("persistentVolumeClaim", {}).get("claimName") == "recon-data"
        }
        (container,) = pod["containers"]
        assert [m["mountPath"] for m in container["volumeMounts"] if m["name"] in claims] == [
            data_dir
        ]
    worker = one("Deployment", "recon-worker")["spec"]["template"]["spec"]["containers"][0]
    assert worker["command"][:4] == ["flask", "--app", "wsgi", "worker"]
    migrate = one("Job", "recon-migrate")["spec"]["template"]["spec"]["containers"][0]
    assert migrate["command"] == ["flask", "--app", "wsgi", "db", "upgrade"]


def policies() -> list[dict[str, Any]]:
    return [d for d in CORE if d["kind"] == "NetworkPolicy"]


def admitted(pod: str, namespace: str, port: int) -> bool:
    """Whether the policies let ``namespace`` open ``port`` on a ``pod`` (component) pod.

    NetworkPolicy semantics: a pod selected by any Ingress policy is isolated,
    and admits the union of what those policies allow.
    """
    labels = {"app.kubernetes.io/name": "recon", "app.kubernetes.io/component": pod}
    selecting = [
        p
        for p in policies()
        if "Ingress" in p["spec"]["policyTypes"]
        and p["spec"]["podSelector"]["matchLabels"].items() <= labels.items()
    ]
    assert selecting, f"{pod} pods are selected by no policy: open to every namespace"
    for policy in selecting:
        for rule in policy["spec"].get("ingress", []):
            ports = {(p["protocol"], p["port"]) for p in rule.get("ports", [])}
            peers = {
                peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
                for peer in rule["from"]
            }
            if namespace in peers and ("TCP", port) in ports:
                return True
    return False


def test_network_policies_never_widen_past_namespaces() -> None:
    for policy in policies():
        for rule in policy["spec"].get("ingress", []):
            # A podSelector beside the namespaceSelector would narrow a peer; an
            # ipBlock or a bare podSelector would widen it.
            assert all(set(peer) == {"namespaceSelector"} for peer in rule["from"])


@pytest.mark.parametrize(
    "pod, namespace, port, allowed",
    [
        ("web", "ingress-nginx", 8000, True),
        ("web", "monitoring", 8000, True),
        ("web", "default", 8000, False),
        ("web", "monitoring", 9464, False),
        ("worker", "monitoring", 9464, True),
        ("worker", "ingress-nginx", 9464, False),
        ("worker", "default", 9464, False),
        ("worker", "monitoring", 8000, False),
        ("migrate", "monitoring", 8000, False),
        ("migrate", "ingress-nginx", 8000, False),
    ],
)
def test_network_policy_admits_the_ingress_to_web_and_monitoring_to_metrics_only(
    pod: str, namespace: str, port: int, allowed: bool
) -> None:
    assert admitted(pod, namespace, port) is allowed


def test_egress_is_dns_postgres_and_redis() -> None:
    egress = one("NetworkPolicy", "recon-egress")["spec"]["egress"]
    ports = {(p["protocol"], p["port"]) for rule in egress for p in rule["ports"]}
    assert ports == {("UDP", 53), ("TCP", 53), ("TCP", 5432), ("TCP", 6379)}


def test_workers_serve_metrics_on_the_configured_port_one_child_each() -> None:
    config = one("ConfigMap", "recon-config")["data"]
    worker = one("Deployment", "recon-worker")["spec"]["template"]["spec"]["containers"][0]
    assert worker["command"] == ["flask", "--app", "wsgi", "worker", "--concurrency=1"]
    (port,) = worker["ports"]
    assert (port["name"], port["containerPort"]) == ("metrics", 9464)
    assert config["RECON_WORKER_METRICS_PORT"] == "9464"
    # The pod's address, not loopback: Prometheus scrapes it from another pod.
    assert config["RECON_BIND_HOST"] == "0.0.0.0"  # noqa: S104
    service = one("Service", "recon-worker-metrics")
    assert service["spec"]["clusterIP"] == "None"
    assert service["spec"]["selector"] == {
        "app.kubernetes.io/name": "recon",
        "app.kubernetes.io/component": "worker",
    }
    assert [p["targetPort"] for p in service["spec"]["ports"]] == ["metrics"]


def ingress_routes(path: str) -> bool:
    """Whether the Ingress sends ``path`` to recon (Kubernetes' Exact/Prefix semantics)."""
    ingress = one("Ingress", "recon-web")
    for rule in ingress["spec"]["rules"]:
        for entry in rule["http"]["paths"]:
            wanted = entry["path"]
            if entry["pathType"] == "Exact" and path == wanted:
                return True
            if entry["pathType"] == "Prefix":
                elements = [e for e in wanted.split("/") if e]
                if [e for e in path.split("/") if e][: len(elements)] == elements:
                    return True
    return False


@pytest.mark.parametrize(
    "path",
    [
        "/api/auth/login",
        "/api/users/3",
        "/api/projects",
        "/api/projects/7/jobs/2/results",
        "/api/health",
        "/api/ready",
        "/api/openapi.json",
        "/api/docs",
    ],
)
def test_ingress_routes_the_api(path: str) -> None:
    assert ingress_routes(path)


@pytest.mark.parametrize("path", ["/api/metrics", "/api/metrics/", "/api/metricsx", "/metrics"])
def test_ingress_keeps_metrics_private(path: str) -> None:
    assert not ingress_routes(path)
    for entry in one("Ingress", "recon-web")["spec"]["rules"][0]["http"]["paths"]:
        assert entry["pathType"] in {"Exact", "Prefix"}, "ImplementationSpecific could regex-match"


def test_ingress_reaches_no_worker() -> None:
    backends = {
        (entry["backend"]["service"]["name"], entry["backend"]["service"]["port"]["name"])
        for rule in one("Ingress", "recon-web")["spec"]["rules"]
        for entry in rule["http"]["paths"]
    }
    assert backends == {("recon-web", "http")}
    web = one("Service", "recon-web")
    assert web["spec"]["selector"]["app.kubernetes.io/component"] == "web"
    assert [p["targetPort"] for p in web["spec"]["ports"]] == ["http"]


MONITORS = {d["metadata"]["name"]: d for d in documents(K8S / "servicemonitor.yaml")}


@pytest.mark.parametrize(
    "name, service, path, job",
    [
        ("recon-web", "recon-web", "/api/metrics", "recon"),
        ("recon-worker", "recon-worker-metrics", "/metrics", "recon-worker"),
    ],
)
def test_service_monitors_scrape_with_the_secret_token(
    name: str, service: str, path: str, job: str
) -> None:
    assert sorted(MONITORS) == ["recon-web", "recon-worker"]
    monitor = MONITORS[name]
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["kind"] == "ServiceMonitor"
    assert monitor["metadata"]["namespace"] == NAMESPACE
    selector = monitor["spec"]["selector"]["matchLabels"]
    # Exactly one Service matches (not a headless twin too): each pod is scraped once.
    matching = [
        d
        for d in CORE
        if d["kind"] == "Service" and selector.items() <= d["metadata"]["labels"].items()
    ]
    assert [d["metadata"]["name"] for d in matching] == [service]
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] in {p["name"] for p in matching[0]["spec"]["ports"]}
    assert endpoint["path"] == path
    assert endpoint["interval"] == "15s"
    assert endpoint["authorization"] == {
        "type": "Bearer",
        "credentials": {"name": "recon-secrets", "key": "metrics-token"},
    }
    # The job label the alerts and ops/prometheus/prometheus.yml use.
    assert endpoint["relabelings"] == [{"targetLabel": "job", "replacement": job}]
    assert set(endpoint) <= {
        "port",
        "path",
        "scheme",
        "interval",
        "scrapeTimeout",
        "authorization",
        "relabelings",
        "metricRelabelings",
    }


def test_kustomization_builds_the_core_resources() -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl not installed")
    built = subprocess.run(
        [kubectl, "kustomize", str(K8S)], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    names = {(d["kind"], d["metadata"]["name"]) for d in yaml.safe_load_all(built) if d}
    assert names == {(d["kind"], d["metadata"]["name"]) for d in CORE}
