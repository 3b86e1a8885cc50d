"""A job through the HTTP API, in embedded mode or in the production topology.

    .venv/bin/python bench/job/run.py --rows 100000 [--pages 50] [--per-page 50]
    .venv/bin/python bench/job/run.py --rows 1000000 --topology production \
        [--database URL] [--redis URL]

Embedded (the default): gunicorn with the shipped config on a fresh SQLite file
(``tests/servers.py``) and the thread runner. Production: gunicorn and one Celery worker
(concurrency 1) on a throwaway PostgreSQL database (on the server of ``--database``,
``RECON_TEST_DATABASE_URL`` by default) and Redis (``--redis``), the job queue and cache
keys under a name of their own. Then it creates a user, uploads the two seeded files of
``bench/engine``, then runs the same job twice (fresh: every exception inserted; re-run:
every exception carried over). For each it prints the wall time from POST to
``succeeded`` split into queue (``started_at - created_at``), engine (the summary's
``duration_seconds``) and the rest (publish and bookkeeping), the ratios job / engine
and exceptions / s of the rest. Then the exceptions list: p50 / p95 of the first page,
of ``--pages`` pages walked by cursor (``after``), of a deep ``page=`` in the middle,
and filtered by kind and status.

Then the job's whole CSV export (every record, streamed): rows/s and how far the
gunicorn processes' RSS grew while it streamed (sampled every 50 ms). In the production
topology it also prints the worker's peak RSS (the largest ``VmHWM``
of the worker's processes: the prefork child runs the job).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench" / "engine")]

from data import RECIPES, generate  # noqa: E402 - bench-local module

# The two-pass recipe (exact and tolerant on key, breaks): the figures in the README.
RULES = RECIPES["two_pass"]["rules"]

from stored import service_arguments, throwaway_database  # noqa: E402 - bench-local module

from tests.servers import (  # noqa: E402
    BIN,
    gunicorn,
    server_env,
    start_celery_worker,
    stop_group,
)

PASSWORD = "a long bench password"  # noqa: S105 - a throwaway server's user


class Client:
    def __init__(self, base: str) -> None:
        self.base, self.token = base, ""

    def call(self, method: str, path: str, body: Any = None, **headers: str) -> Any:
        data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
        if body is not None and not isinstance(body, bytes):
            headers.setdefault("Content-Type", "application/json")
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        request = urllib.request.Request(  # noqa: S310 - our own server on 127.0.0.1
            self.base + path, data=data, method=method, headers=headers
        )
        with urllib.request.urlopen(request, timeout=600) as response:  # noqa: S310
            return json.loads(response.read() or b"null")

    def upload(self, pid: int, path: Path) -> int:
        boundary = "benchboundary7f3a"
        body = (
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="name"\r\n\r\n'
                f"{path.stem}\r\n"
                f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
                f'filename="{path.name}"\r\nContent-Type: text/csv\r\n\r\n'
            ).encode()
            + path.read_bytes()
            + f"\r\n--{boundary}--\r\n".encode()
        )
        content_type = f"multipart/form-data; boundary={boundary}"
        return int(
            self.call(
                "POST", f"/api/projects/{pid}/sources", body, **{"Content-Type": content_type}
            )["id"]
        )


def seconds_between(start: str, end: str) -> float:
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


def run_job(client: Client, pid: int, left: int, right: int) -> dict[str, Any]:
    body = {"left_source_id": left, "right_source_id": right, "rules": RULES}
    started = time.perf_counter()
    job = client.call("POST", f"/api/projects/{pid}/jobs", body)
    while job["status"] in ("queued", "running"):
        time.sleep(0.05)
        job = client.call("GET", f"/api/projects/{pid}/jobs/{job['id']}")
    wall = time.perf_counter() - started
    assert job["status"] == "succeeded", job
    queue = seconds_between(job["created_at"], job["started_at"])
    engine = float(job["summary"]["duration_seconds"])
    rest = wall - queue - engine
    return {"id": job["id"], "wall": wall, "queue": queue, "engine": engine, "rest": rest}


def server_pids(port: str) -> list[int]:
    """The gunicorn processes serving ``port`` (found by their environment)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            if b"gunicorn" not in (entry / "cmdline").read_bytes():
                continue
            if f"PORT={port}".encode() in (entry / "environ").read_bytes().split(b"\0"):
                found.append(int(entry.name))
    return found


def rss_mb(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) / 1024
    return total


def export(client: Client, pid: int, job_id: int, port: str) -> str:
    """Stream the job's whole CSV export; its rows/s and how far the server's RSS grew."""
    pids = server_pids(port)
    before, peak, done = rss_mb(pids), [0.0], threading.Event()

    def sample() -> None:
        while not done.wait(0.05):
            peak[0] = max(peak[0], rss_mb(pids))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    request = urllib.request.Request(  # noqa: S310 - our own server on 127.0.0.1
        f"{client.base}/api/projects/{pid}/jobs/{job_id}/export?format=csv",
        headers={"Authorization": f"Bearer {client.token}"},
    )
    started, lines, size = time.perf_counter(), 0, 0
    with urllib.request.urlopen(request, timeout=600) as response:  # noqa: S310
        while chunk := response.read(1 << 20):
            lines += chunk.count(b"\n")
            size += len(chunk)
    seconds = time.perf_counter() - started
    done.set()
    sampler.join()
    rows = lines - 1  # the header
    return (
        f"export (CSV, every record) {rows:,} rows, {size / 1e6:.0f} MB in {seconds:.2f} s: "
        f"{rows / seconds:,.0f} rows/s; the server's RSS {before:.0f} MB, "
        f"grew {max(0.0, peak[0] - before):.0f} MB"
    )


def timings(client: Client, paths: list[str]) -> str:
    times = []
    for path in paths:
        started = time.perf_counter()
        client.call("GET", path)
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    p95 = times[min(len(times) - 1, int(len(times) * 0.95))]
    return f"p50 {statistics.median(times):6.1f} ms  p95 {p95:6.1f} ms  ({len(times)} reads)"


def peak_rss_mb(pid: int) -> float:
    """The largest peak RSS (VmHWM) of ``pid`` and its descendants, in MB."""
    peak, pending = 0.0, [pid]
    while pending:
        current = pending.pop()
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{current}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak = max(peak, int(line.split()[1]) / 1024)
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
            pending.extend(int(c) for c in children)
    return peak


@contextlib.contextmanager
def topology(args: argparse.Namespace, tmp: Path) -> Iterator[tuple[dict[str, str], Any]]:
    """The server settings of the chosen topology, and its worker (None when embedded)."""
    if args.topology == "embedded":
        yield {"RECON_JOB_RUNNER": "thread"}, None
        return
    queue = f"recon-bench-{uuid.uuid4().hex[:8]}"
    with throwaway_database(args.database, "recon_bench_job") as url:
        extra = {
            "RECON_DATABASE_URL": url,
            "RECON_REDIS_URL": args.redis,
            "RECON_JOB_RUNNER": "celery",
            "RECON_JOB_QUEUE": queue,
            "RECON_CACHE_NAMESPACE": queue,
        }
        log = (tmp / "worker.log").open("wb")
        worker = start_celery_worker(queue, server_env(tmp, 0, **extra), log, own_session=True)
        try:
            yield extra, worker
        finally:
            stop_group(worker, timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--pages", type=int, default=50)
    parser.add_argument("--per-page", type=int, default=50)
    parser.add_argument("--topology", choices=("embedded", "production"), default="embedded")
    service_arguments(parser)
    args = parser.parse_args()
    print(
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; {args.topology} topology"
    )
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        left_csv, right_csv = generate(tmp, args.rows, 7, "two_pass")
        with topology(args, tmp) as (extra, worker), gunicorn(tmp, **extra) as base:
            env = server_env(tmp, 0, **extra)
            subprocess.run(
                [
                    str(BIN / "flask"),
                    "--app",
                    "wsgi",
                    "create-user",
                    "bench",
                    "--role",
                    "admin",
                    "--password-stdin",
                ],
                cwd=ROOT,
                env=env,
                input=PASSWORD,
                text=True,
                check=True,
                capture_output=True,
            )
            client = Client(base)
            login = {"username": "bench", "password": PASSWORD}
            client.token = client.call("POST", "/api/auth/login", login)["access_token"]
            pid = int(client.call("POST", "/api/projects", {"name": "bench"})["id"])
            left, right = client.upload(pid, left_csv), client.upload(pid, right_csv)
            for label in ("fresh", "re-run"):
                job = run_job(client, pid, left, right)
                total = client.call(
                    "GET", f"/api/projects/{pid}/exceptions?per_page=1&count=exact"
                )["total"]
                print(
                    f"{label:7s} {args.rows} rows a side, {total} exceptions:"
                    f" job {job['wall']:.2f} s"
                    f" = queue {job['queue']:.2f} + engine {job['engine']:.2f}"
                    f" + publish and the rest {job['rest']:.2f};"
                    f" job / engine {job['wall'] / job['engine']:.2f},"
                    f" {total / job['rest']:.0f} exceptions/s after the engine"
                )
            if worker is not None:
                print(f"worker peak RSS {peak_rss_mb(worker.pid):.0f} MB (both jobs)")
            print(export(client, pid, job["id"], base.rsplit(":", 1)[1]))
            url = f"/api/projects/{pid}/exceptions?per_page={args.per_page}"
            print(f"exceptions page 1          {timings(client, [url] * 20)}")
            walked, after = [], None
            for _ in range(args.pages):
                page = client.call("GET", url + (f"&after={after}" if after else ""))
                after = page["next"]
                if after is None:
                    break
                walked.append(url + f"&after={after}")
            print(f"exceptions by cursor       {timings(client, walked)}")
            middle = max(1, total // args.per_page // 2)
            print(f"exceptions page={middle:<11d}{timings(client, [url + f'&page={middle}'] * 10)}")
            kinds = [url + f"&kind={k}&status=open" for k in ("break", "unmatched")] * 10
            print(f"exceptions kind+status     {timings(client, kinds)}")


if __name__ == "__main__":
    main()
