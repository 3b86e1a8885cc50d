"""The running recon processes of the end-to-end test, and the traffic it sends them."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from tests.instrumentation.workers import (
    FAILING_LEFT,
    FAILING_RIGHT,
    FAILING_RULES,
    WorkerRun,
    wait_until,
)
from tests.ops.exprs import REPO

BIN = Path(sys.executable).parent
TOKEN = "e2e-metrics-token"
ADMIN_PASSWORD = "e2e admin password 1"
USER_PASSWORD = "e2e user password 1"
RULES = {"passes": [{"name": "exact", "match_on": ["key"], "amount_tolerance": {"absolute": "0"}}]}


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
