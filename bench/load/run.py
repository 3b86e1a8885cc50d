"""Load at a fixed offered rate against the production topology, with Redis stopped halfway.

Starts a private Redis, a throwaway PostgreSQL database on the local server, one Celery
worker and gunicorn (``ops/gunicorn.conf.py``), loads the demo project (about 3,000
records a side and a finished job), then sends a realistic mix at a constant rate, open
loop (wrk2's model: each request has a scheduled start time and its latency is counted
from then, so a stall is not hidden by the client waiting for it):

    login 2 %, project list 18 %, job 5 %, results pages 30 %, exception list 20 %,
    exception update 15 %, analytics 5 %, a small upload 5 %

Two named baselines run at the same rate in the same run: ``health`` (GET /api/health,
what the stack costs with no work) and the mix with Redis up throughout. Each run prints
requests, errors (any 5xx, timeout or refused connection), p50/p95/p99/max, and the p99
ratio to the health baseline.

    .venv/bin/python bench/load/run.py [--rate 100] [--seconds 60] [--threads 64]
"""

from __future__ import annotations

import argparse
import itertools
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "bench" / "engine")]

from stored import throwaway_database  # noqa: E402 - bench-local module

from tests.servers import BIN, free_port, stop_group  # noqa: E402

PG_URL = os.environ.get(
    "RECON_BENCH_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
PASSWORD = "load-bench-password"  # noqa: S105 - the admin of a throwaway server


def wait_for(check: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not come up")
        time.sleep(0.2)


class Redis:
    def __init__(self, workdir: Path) -> None:
        self.port, self.workdir, self.proc = free_port(), workdir, None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
            ],
            stdout=subprocess.DEVNULL,
        )
        wait_for(
            lambda: (
                subprocess.run(
                    ["redis-cli", "-p", str(self.port), "ping"], capture_output=True
                ).stdout.strip()
                == b"PONG"
            ),
            "redis",
        )

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None


@contextmanager
def process(args: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen]:
    with log.open("wb") as out:
        proc = subprocess.Popen(
            args, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        yield proc
    finally:
        stop_group(proc)


@dataclass
class Stack:
    base: str
    redis: Redis
    token: str
    pid: int
    job_id: int
    exception_ids: list[int]


@contextmanager
def stack(tmp: Path, workers: int = 1) -> Iterator[Stack]:
    with ExitStack() as stop:
        redis = Redis(tmp)
        redis.start()
        stop.callback(redis.stop)
        url = stop.enter_context(throwaway_database(PG_URL, "recon_load"))
        port = free_port()
        env = {
            **os.environ,
            "RECON_DATABASE_URL": url,
            "RECON_DATA_DIR": str(tmp / "data"),
            "RECON_REDIS_URL": redis.url,
            "RECON_ADMIN_PASSWORD": PASSWORD,
            "RECON_LOGIN_RATE_LIMIT": "100000/minute",
            "RECON_LOG_LEVEL": "WARNING",
            "RECON_METRICS_TOKEN": "",
            "PORT": str(port),
            "RECON_BIND_HOST": "127.0.0.1",
            "PYTHONPATH": str(ROOT),
            "GUNICORN_WORKERS": str(workers),
        }
        subprocess.run(
            [str(BIN / "flask"), "--app", "wsgi", "db", "upgrade"],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
        )
        stop.enter_context(
            process(
                [str(BIN / "flask"), "--app", "wsgi", "worker", "--concurrency=1"],
                env,
                tmp / "worker.log",
            )
        )
        subprocess.run(
            [str(BIN / "flask"), "--app", "wsgi", "demo"],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
            timeout=600,
        )
        stop.enter_context(
            process(
                [str(BIN / "gunicorn"), "-c", "ops/gunicorn.conf.py", "wsgi:app"],
                env,
                tmp / "gunicorn.log",
            )
        )
        base = f"http://127.0.0.1:{port}"

        def up() -> bool:
            try:
                return requests.get(f"{base}/api/health", timeout=1).status_code == 200
            except requests.RequestException:
                return False

        wait_for(up, "gunicorn")
        token = login(base)
        auth = {"Authorization": f"Bearer {token}"}
        project = requests.get(f"{base}/api/projects?q=demo", headers=auth, timeout=10).json()[
            "items"
        ][0]
        pid = project["id"]
        deadline = time.monotonic() + 300
        while True:  # the demo's job runs on the worker
            jobs = requests.get(f"{base}/api/projects/{pid}/jobs", headers=auth, timeout=10).json()[
                "items"
            ]
            if jobs and jobs[0]["status"] == "succeeded":
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"the demo job did not finish: {jobs}")
            time.sleep(1)
        exceptions = requests.get(
            f"{base}/api/projects/{pid}/exceptions?per_page=500", headers=auth, timeout=10
        ).json()["items"]
        yield Stack(base, redis, token, pid, jobs[0]["id"], [e["id"] for e in exceptions])


def login(base: str) -> str:
    response = requests.post(
        f"{base}/api/auth/login", json={"username": "admin", "password": PASSWORD}, timeout=10
    )
    response.raise_for_status()
    return str(response.json()["access_token"])


Request = Callable[[requests.Session], requests.Response]


def mix(s: Stack) -> list[tuple[int, str, Request]]:
    """(weight, name, send) of each kind of request in the mix."""
    auth = {"Authorization": f"Bearer {s.token}"}
    api = f"{s.base}/api/projects/{s.pid}"
    counter = itertools.count()

    def results(session: requests.Session) -> requests.Response:
        status = random.choice(
            ["", "&status=matched", "&status=unmatched", "&status=break", "&status=suggested"]
        )
        return session.get(
            f"{api}/jobs/{s.job_id}/results?page={random.randint(1, 20)}{status}", headers=auth
        )

    def update(session: requests.Session) -> requests.Response:
        eid = random.choice(s.exception_ids)
        return session.patch(
            f"{api}/exceptions/{eid}", headers=auth, json={"note": f"checked {next(counter)}"}
        )

    def upload(session: requests.Session) -> requests.Response:
        body = f"Reference,Amount,Date\nL{uuid.uuid4().hex[:10]},1.00,2024-01-01\n".encode()
        return session.post(
            f"{api}/sources",
            headers=auth,
            data={"name": "load"},
            files={"file": ("load.csv", body, "text/csv")},
        )

    return [
        (
            2,
            "login",
            lambda session: session.post(
                f"{s.base}/api/auth/login", json={"username": "admin", "password": PASSWORD}
            ),
        ),
        (18, "projects", lambda session: session.get(f"{s.base}/api/projects", headers=auth)),
        (5, "job", lambda session: session.get(f"{api}/jobs/{s.job_id}", headers=auth)),
        (30, "results", results),
        (
            20,
            "exceptions",
            lambda session: session.get(
                f"{api}/exceptions?status=open&page={random.randint(1, 5)}", headers=auth
            ),
        ),
        (15, "exception_update", update),
        (5, "analytics", lambda session: session.get(f"{api}/analytics", headers=auth)),
        (5, "upload", upload),
    ]


@dataclass
class Run:
    name: str
    latencies: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    by_phase: dict[str, list[float]] = field(default_factory=dict)
    by_kind: dict[str, list[float]] = field(default_factory=dict)

    def add(self, phase: str, kind: str, latency: float, error: str | None) -> None:
        self.latencies.append(latency)
        self.by_phase.setdefault(phase, []).append(latency)
        self.by_kind.setdefault(kind, []).append(latency)
        if error:
            self.errors[f"{kind}: {error}"] = self.errors.get(f"{kind}: {error}", 0) + 1


def quantile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    return (
        statistics.quantiles(values, n=1000, method="inclusive")[int(q * 1000) - 1]
        if len(values) > 1
        else values[0]
    )


def drive(
    run: Run,
    kinds: list[tuple[int, str, Request]],
    *,
    rate: float,
    seconds: float,
    threads: int,
    phase_at: Callable[[float], str],
    on_time: Callable[[float], None] | None = None,
) -> None:
    """Send ``rate`` requests a second for ``seconds``, open loop, on a pool of ``threads``."""
    weights = [w for w, _, _ in kinds]
    local = threading.local()
    lock = threading.Lock()

    def one(scheduled: float, kind: str, send: Request, phase: str) -> None:
        session = getattr(local, "session", None)
        if session is None:
            session = local.session = requests.Session()
        error = None
        try:
            response = send(session)
            if response.status_code >= 500:
                error = str(response.status_code)
        except requests.RequestException as exc:
            error = type(exc).__name__
        latency = time.monotonic() - scheduled
        with lock:
            run.add(phase, kind, latency, error)

    start = time.monotonic()
    random.seed(1)
    with ThreadPoolExecutor(max_workers=threads) as pool:
        for i in itertools.count():
            scheduled = start + i / rate
            if scheduled - start >= seconds:
                break
            now = time.monotonic()
            if scheduled > now:
                time.sleep(scheduled - now)
            if on_time is not None:
                on_time(scheduled - start)
            _, kind, send = random.choices(kinds, weights=weights)[0]
            pool.submit(one, scheduled, kind, send, phase_at(scheduled - start))


def report(run: Run, baseline: Run | None) -> None:
    print(f"\n{run.name}: {len(run.latencies)} requests, {sum(run.errors.values())} errors")
    for phase, values in run.by_phase.items():
        p99 = quantile(values, 0.99)
        ratio = f"  p99 {p99 / quantile(baseline.latencies, 0.99):5.1f}x health" if baseline else ""
        print(
            f"  {phase:<22} n={len(values):>5}  p50 {quantile(values, 0.5) * 1000:7.1f} ms  "
            f"p95 {quantile(values, 0.95) * 1000:7.1f} ms  p99 {p99 * 1000:7.1f} ms  "
            f"max {max(values) * 1000:7.1f} ms{ratio}"
        )
    if len(run.by_kind) > 1:
        print(
            "  by kind: "
            + ", ".join(
                f"{kind} p50 {quantile(v, 0.5) * 1000:.0f} / p99 {quantile(v, 0.99) * 1000:.0f} ms"
                for kind, v in sorted(run.by_kind.items())
            )
        )
    for error, count in sorted(run.errors.items()):
        print(f"  error {error}: {count}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=100, help="requests per second offered")
    parser.add_argument("--seconds", type=float, default=60, help="length of each run")
    parser.add_argument("--threads", type=int, default=64, help="client threads (open loop)")
    parser.add_argument(
        "--workers", type=int, default=1, help="gunicorn worker processes (GUNICORN_WORKERS)"
    )
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="recon-load-") as tmp,
        stack(Path(tmp), args.workers) as s,
    ):
        kinds = mix(s)
        health = Run("health (baseline)")
        drive(
            health,
            [(1, "health", lambda session: session.get(f"{s.base}/api/health"))],
            rate=args.rate,
            seconds=min(args.seconds, 20),
            threads=args.threads,
            phase_at=lambda t: "all",
        )
        steady = Run("mix, Redis up (baseline)")
        drive(
            steady,
            kinds,
            rate=args.rate,
            seconds=args.seconds,
            threads=args.threads,
            phase_at=lambda t: "all",
        )
        half = args.seconds / 2
        stopped = {"done": False}

        def stop_redis(t: float) -> None:
            if t >= half and not stopped["done"]:
                stopped["done"] = True
                threading.Thread(target=s.redis.stop, daemon=True).start()

        outage = Run("mix, Redis stopped halfway")
        drive(
            outage,
            kinds,
            rate=args.rate,
            seconds=args.seconds,
            threads=args.threads,
            phase_at=lambda t: "Redis up" if t < half else "Redis stopped",
            on_time=stop_redis,
        )
        print(
            f"\noffered {args.rate:.0f} req/s for {args.seconds:.0f} s per run, "
            f"{args.threads} client threads, gunicorn ({args.workers} worker(s)) + 1 Celery worker "
            "+ PostgreSQL + Redis"
        )
        for run in (health, steady, outage):
            report(run, None if run is health else health)


if __name__ == "__main__":
    main()
