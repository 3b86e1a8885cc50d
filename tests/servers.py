"""Start the real thing for end-to-end tests: migrate, then gunicorn with the shipped config."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stop_group(proc: subprocess.Popen[bytes], timeout: float = 20) -> None:
    """Stop a process started in a session of its own, children too: SIGTERM to its group,
    then SIGKILL if it has not ended within ``timeout`` seconds."""
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def server_env(tmp: Path, port: int, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "PORT": str(port),
        "RECON_BIND_HOST": "127.0.0.1",
        "RECON_DATABASE_URL": f"sqlite:///{tmp / 'recon.db'}",
        "RECON_DATA_DIR": str(tmp / "data"),
        "RECON_REDIS_URL": "",
        "RECON_METRICS_TOKEN": "",
        # A server of its own keeps its cache apart from other runs on the shared Redis.
        "RECON_CACHE_NAMESPACE": f"test-{uuid.uuid4().hex[:12]}:",
        "PYTHONPATH": str(ROOT),
        **extra,
    }


def migrate(env: dict[str, str]) -> None:
    """Upgrade the database ``env`` names to the latest migration."""
    subprocess.run(
        [str(BIN / "flask"), "--app", "wsgi", "db", "upgrade"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        timeout=120,
    )


def start_gunicorn(
    env: dict[str, str], out: IO[bytes], *, own_session: bool = False
) -> subprocess.Popen:
    """Start gunicorn with the shipped config, its output to ``out``; ``own_session`` puts it
    in a process group of its own (one killpg takes the master and its workers)."""
    return subprocess.Popen(
        [str(BIN / "gunicorn"), "-c", "ops/gunicorn.conf.py", "wsgi:app"],
        cwd=ROOT,
        env=env,
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=own_session,
    )


def start_celery_worker(
    queue: str, env: dict[str, str], out: IO[bytes], *, own_session: bool = False
) -> subprocess.Popen:
    """Start one Celery worker process (concurrency 1) reading ``queue``."""
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "recon.celery_worker",
            "worker",
            "-Q",
            queue,
            "--concurrency=1",
            "--without-gossip",
            "--without-mingle",
            "--loglevel=INFO",
        ],
        cwd=ROOT,
        env=env,
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=own_session,
    )


@contextmanager
def gunicorn(tmp: Path, **extra: str) -> Iterator[str]:
    """Migrate a fresh database, serve wsgi:app, yield the base URL; always stop it."""
    port = free_port()
    env = server_env(tmp, port, **extra)
    migrate(env)
    log = (tmp / "gunicorn.log").open("wb")
    proc = start_gunicorn(env, log)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"gunicorn did not start: {(tmp / 'gunicorn.log').read_text()}")
            try:
                with urllib.request.urlopen(f"{base}/api/health", timeout=2):  # noqa: S310
                    break
            except OSError:
                time.sleep(0.2)
        yield base
    finally:
        proc.send_signal(signal.SIGINT)  # quick shutdown
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
