"""The gunicorn mode: what a client on the loopback sees, instrumentation on vs off.

Two gunicorn servers run the shipped config (``ops/gunicorn.conf.py``: one
worker, gthread) on free loopback ports, each on its own SQLite file seeded
with the same user, token and project: ``wsgi:app`` (what production runs) and
``wsgi_off:app`` (the same app without ``register_observability``). A bounded
load generator (wrk when installed, else a keep-alive ``http.client`` thread
pool) sends the benchmark's request mix to each in alternating rounds of a
fixed duration; throughput is summed over the rounds, p50/p99 are the best
round's (the least disturbed by neighbours on a shared machine).
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import create_engine, make_url

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
GUNICORN = Path(sys.executable).with_name("gunicorn")
APPS = {"on": "wsgi:app", "off": "wsgi_off:app"}


@dataclass
class Server:
    mode: str
    proc: subprocess.Popen[bytes]
    port: int
    token: str
    pid: int
    rounds: list[dict[str, float]] = field(default_factory=list)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(mode: str, tmp: Path, token: str, pid: int, threads: int, database_url: str) -> Server:
    port = free_port()
    env = {
        **os.environ,
        "PORT": str(port),
        "RECON_BIND_HOST": "127.0.0.1",
        "RECON_DATABASE_URL": database_url,
        "RECON_DATA_DIR": str(tmp / "data"),
        "RECON_REDIS_URL": "",
        "RECON_ADMIN_PASSWORD": "",
        "RECON_METRICS_TOKEN": "",
        # INFO: the JSON access line of every request is part of what is measured.
        "RECON_LOG_LEVEL": "INFO",
        "GUNICORN_THREADS": str(threads),
        "GUNICORN_LOG_LEVEL": "warning",
        "PYTHONPATH": str(ROOT),
    }
    argv = [str(GUNICORN), "-c", "ops/gunicorn.conf.py", "--pythonpath", str(HERE), APPS[mode]]
    with (tmp / "server.log").open("wb") as out:
        proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    server = Server(mode, proc, port, token, pid)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"gunicorn ({mode}) exited: {(tmp / 'server.log').read_text()}")
        try:
            if get(port, "/api/health")[0] == 200:
                return server
        except OSError:
            time.sleep(0.2)
    stop(server)
    raise RuntimeError(f"gunicorn ({mode}) did not answer within 60 s")


def stop(server: Server) -> None:
    server.proc.send_signal(signal.SIGTERM)
    try:
        server.proc.wait(timeout=35)
    except subprocess.TimeoutExpired:
        server.proc.kill()
        server.proc.wait()


def get(port: int, path: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def load_wrk(server: Server, seconds: float, connections: int) -> dict[str, float]:
    argv = [
        "wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--timeout", "10s",
        "-s", str(HERE / "mix.lua"), f"http://127.0.0.1:{server.port}",
        "--", server.token, str(server.pid),
    ]  # fmt: skip
    out = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=seconds + 30)
    line = next(x for x in out.stdout.splitlines() if x.startswith("RESULT "))
    raw = json.loads(line.removeprefix("RESULT "))
    return {
        "requests": raw["requests"],
        "seconds": raw["duration_us"] / 1e6,
        "p50": raw["p50_us"] / 1e6,
        "p99": raw["p99_us"] / 1e6,
        "errors": raw["socket_errors"],
    }


def load_threads(server: Server, seconds: float, connections: int) -> dict[str, float]:
    """The same mix from ``connections`` keep-alive connections, one thread each."""
    from run import pct, request_mix  # the directory of run.py is on sys.path

    mix = request_mix(server.token, server.pid)
    latencies: list[list[float]] = [[] for _ in range(connections)]
    errors = [0] * connections
    deadline = time.perf_counter() + seconds

    def worker(k: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        i = k
        while time.perf_counter() < deadline:
            method, path, headers = mix[i % len(mix)]
            i += 1
            t0 = time.perf_counter()
            try:
                conn.request(method, path, headers=headers)
                conn.getresponse().read()
            except (OSError, http.client.HTTPException):
                errors[k] += 1
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
                continue
            latencies[k].append(time.perf_counter() - t0)
        conn.close()

    started = time.perf_counter()
    pool = [threading.Thread(target=worker, args=(k,)) for k in range(connections)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    elapsed = time.perf_counter() - started
    flat = [x for per in latencies for x in per]
    return {
        "requests": len(flat),
        "seconds": elapsed,
        "p50": pct(flat, 0.5),
        "p99": pct(flat, 0.99),
        "errors": sum(errors),
    }


@contextmanager
def scratch_databases(server_url: str | None, tmp: Path) -> Iterator[dict[str, str]]:
    """One database URL per mode: SQLite files, or fresh databases on ``server_url``."""
    if server_url is None:
        yield {mode: f"sqlite:///{tmp / f'served-{mode}' / 'recon.db'}" for mode in APPS}
        return
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    base = make_url(server_url)
    names = {mode: f"recon_bench_http_{mode}_{os.getpid()}" for mode in APPS}
    try:
        with admin.connect() as conn:
            for name in names.values():
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        yield {
            mode: base.set(database=name).render_as_string(hide_password=False)
            for mode, name in names.items()
        }
    finally:
        with admin.connect() as conn:
            for name in names.values():
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def served(
    tmp: Path,
    rounds: int,
    seconds: float,
    connections: int,
    threads: int,
    *,
    postgres: str | None = None,
) -> dict[str, float]:
    from run import build

    load = load_wrk if shutil.which("wrk") else load_threads
    servers: dict[str, Server] = {}
    with scratch_databases(postgres, tmp) as urls:
        try:
            for mode in APPS:
                home = tmp / f"served-{mode}"
                app, mix = build(tmp, f"served-{mode}", mode="off", database_url=urls[mode])
                with app.app_context():
                    app.extensions["sqlalchemy"].engine.dispose()
                token = mix[1][2]["Authorization"].removeprefix("Bearer ")
                pid = int(mix[3][1].rsplit("/", 1)[1])
                servers[mode] = start(mode, home, token, pid, threads, urls[mode])
            for server in servers.values():
                load(server, 2, connections)  # warm up: imports, caches, the pool
            order = list(servers)
            for r in range(rounds):
                # Alternate which side goes first so drift hits both alike.
                for mode in order if r % 2 == 0 else order[::-1]:
                    servers[mode].rounds.append(load(servers[mode], seconds, connections))
        finally:
            for server in servers.values():
                stop(server)
    database = "PostgreSQL" if postgres else "SQLite"
    print(
        f"gunicorn (ops/gunicorn.conf.py, {threads} threads) on {database}, "
        f"{'wrk' if load is load_wrk else 'python threads'} with {connections} keep-alive "
        f"connections, {rounds} rounds x {seconds:g} s per side, load avg "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    rps: dict[str, float] = {}
    for mode, server in servers.items():
        total = sum(r["requests"] for r in server.rounds)
        rps[mode] = total / sum(r["seconds"] for r in server.rounds)
        best = max(server.rounds, key=lambda r: r["requests"] / r["seconds"])
        per_round = " ".join(f"{r['requests'] / r['seconds']:.0f}" for r in server.rounds)
        print(
            f"  instrumentation {mode:>3}: {rps[mode]:7.0f} req/s (best round "
            f"{best['requests'] / best['seconds']:.0f}; rounds {per_round})   "
            f"p50 {best['p50'] * 1e3:6.2f} ms   p99 {best['p99'] * 1e3:6.2f} ms   "
            f"socket errors {sum(r['errors'] for r in server.rounds):.0f}"
        )
    # Each "on" round next to the "off" round beside it: the neighbours' load is
    # closest within a pair, so the median pair is the steadiest figure.
    ratios = sorted(
        (a["requests"] / a["seconds"]) / (b["requests"] / b["seconds"])
        for a, b in zip(servers["on"].rounds, servers["off"].rounds, strict=True)
    )
    print(
        f"  on/off throughput: {rps['on'] / rps['off']:.3f} overall "
        f"(loss {(1 - rps['on'] / rps['off']) * 100:.1f} %, goal < 10 %); paired rounds "
        f"median {statistics.median(ratios):.3f}, range {ratios[0]:.3f}-{ratios[-1]:.3f}"
    )
    return rps
