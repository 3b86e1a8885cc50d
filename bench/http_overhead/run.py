"""HTTP overhead of recon's instrumentation, and the cost of a scrape.

Builds two recon apps in one process on their own SQLite files, identical but
for ``instrumentation.init_app`` (metrics hooks, SQLAlchemy events, request
spans), sends them the same request mix through the WSGI test client in
alternating rounds, and prints throughput and p50/p99 latency for each and the
throughput ratio. Then it fills one app's registry with 50 routes x 5 statuses
of HTTP series and times GET /api/metrics.

    .venv/bin/python bench/http_overhead/run.py [--rounds 10] [--per-round 300]
"""

from __future__ import annotations

import argparse
import gc
import os
import secrets
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from export import export_costs, otlp_environment, otlp_sink
from flask import Flask
from flask.testing import FlaskClient
from flask_migrate import upgrade
from opentelemetry.sdk.trace import TracerProvider
from served import served

import instrumentation
import recon
from recon.auth.service import CurrentUser, issue_token
from recon.extensions import db
from recon.jobs.backlog import backlog_reader
from recon.problems import metrics_unauthorized
from recon.projects.service import create_project
from recon.users.models import Role
from recon.users.service import create_user

Request = tuple[str, str, dict[str, str]]
# Where the otlp mode's exporter would send (a local sink, started by main).
OTLP_ENDPOINT = {"url": ""}


def _with_otlp(app: Flask) -> object:
    """create_app's observability with OTEL_METRICS_EXPORTER=otlp (no export during a run)."""
    with otlp_environment(OTLP_ENDPOINT["url"]):
        return instrumentation.init_app(
            app, unauthorized=metrics_unauthorized, backlog=backlog_reader(app)
        )


MODES: dict[str, Callable[[Flask], object] | None] = {
    "off": lambda app: None,
    "metrics": lambda app: instrumentation.init_app(app, tracing=False),
    "metrics+traces": None,  # what create_app does (no OTLP endpoint: correlation spans)
    # What create_app does with OTEL_EXPORTER_OTLP_ENDPOINT set, minus the export
    # itself: the opentelemetry-instrumentation-flask span on every request.
    "metrics+flask-spans": lambda app: instrumentation.init_app(
        app, tracer_provider=TracerProvider()
    ),
    # The default plus the OTLP reader: every measurement also goes to its storage.
    "metrics+traces+otlp": _with_otlp,
}


def build(
    tmp: Path, name: str, *, mode: str = "metrics+traces", database_url: str | None = None
) -> tuple[Flask, list[Request]]:
    """A migrated recon app with one user, a token and a project; the request mix for it."""
    original = recon.register_observability
    replacement = MODES[mode]
    if replacement is not None:
        recon.register_observability = replacement  # type: ignore[assignment]
    try:
        app = recon.create_app(
            {
                "RECON_DATABASE_URL": database_url or f"sqlite:///{tmp / name / 'recon.db'}",
                "RECON_DATA_DIR": str(tmp / name / "data"),
                "RECON_REDIS_URL": None,
                "RECON_ADMIN_PASSWORD": None,
                "RECON_METRICS_TOKEN": None,
                "RECON_LOG_LEVEL": "ERROR",
                "RATELIMIT_ENABLED": False,
            }
        )
    finally:
        recon.register_observability = original
    token, pid = seed(app)
    return app, request_mix(token, pid)


def seed(app: Flask) -> tuple[str, int]:
    """Migrate ``app``'s database, add a user with a token and a project; return both."""
    with app.app_context():
        upgrade()
        password = secrets.token_urlsafe(16)
        user = create_user(session=db.session, username="bench", password=password)
        raw, _ = issue_token(session=db.session, user=user, ttl=3600)
        current = CurrentUser(id=user.id, username=user.username, role=Role.analyst)
        project = create_project(session=db.session, user=current, name="bench")
        pid = int(project.id)
        db.session.remove()
    return raw, pid


def request_mix(token: str, pid: int) -> list[Request]:
    """The six requests every mode gets, in rotation (mix.lua sends the same)."""
    auth = {"Authorization": f"Bearer {token}"}
    return [
        ("GET", "/api/health", {}),
        ("GET", "/api/auth/me", auth),
        ("GET", "/api/projects", auth),
        ("GET", f"/api/projects/{pid}", auth),
        ("GET", "/api/projects/999999", auth),
        ("GET", "/api/no-such-route", {}),
    ]


def freeze_startup_objects() -> None:
    """What ops/gunicorn.conf.py does once the app is loaded: full collections skip these."""
    gc.collect()
    gc.freeze()


def run_round(client: FlaskClient, mix: list[Request], n: int) -> tuple[float, list[float]]:
    latencies = []
    started = time.perf_counter()
    for i in range(n):
        method, path, headers = mix[i % len(mix)]
        t0 = time.perf_counter()
        client.open(path, method=method, headers=headers)
        latencies.append(time.perf_counter() - t0)
    return time.perf_counter() - started, latencies


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def overhead(tmp: Path, rounds: int, per_round: int) -> dict[str, float]:
    apps = {mode: build(tmp, mode.replace("+", "-"), mode=mode) for mode in MODES}
    totals = dict.fromkeys(apps, 0.0)
    lat: dict[str, list[float]] = {mode: [] for mode in apps}
    clients = {mode: app.test_client() for mode, (app, _) in apps.items()}
    freeze_startup_objects()
    for mode, (_, mix) in apps.items():
        run_round(clients[mode], mix, 60)  # warm caches and code paths
    order = list(apps)
    for r in range(rounds):
        # Rotate the order so drift on a shared machine hits every side alike.
        for mode in order[r % len(order) :] + order[: r % len(order)]:
            seconds, latencies = run_round(clients[mode], apps[mode][1], per_round)
            totals[mode] += seconds
            lat[mode].extend(latencies)
    n = rounds * per_round
    rps = {mode: n / totals[mode] for mode in totals}
    print(f"request mix: {len(apps['off'][1])} routes, {n} requests per side, {rounds} rounds")
    for mode in apps:
        loss = (1 - rps[mode] / rps["off"]) * 100
        print(
            f"  instrumentation {mode:>19}: {rps[mode]:7.0f} req/s   "
            f"p50 {pct(lat[mode], 0.5) * 1e3:6.3f} ms   p99 {pct(lat[mode], 0.99) * 1e3:6.3f} ms"
            f"   throughput loss vs off {loss:5.1f} % (goal < 10 %)"
        )
    return rps


def fill_registry(metrics: Any) -> None:
    """50 routes x 5 statuses of HTTP series, and 50 query series."""
    for route in range(50):
        for status in (200, 201, 400, 404, 500):
            metrics.record_request("GET", f"/api/bench/route{route}/<int:id>", status, 0.004)
            metrics.record_query(f"/api/bench/route{route}/<int:id>", "select", "projects", 0.001)


def scrape_cost(tmp: Path, repeats: int) -> float:
    app, _ = build(tmp, "scrape")
    fill_registry(app.extensions["recon_metrics"])
    client = app.test_client()
    freeze_startup_objects()
    timings = []
    size = 0
    for _ in range(repeats):
        t0 = time.perf_counter()
        response = client.get("/api/metrics")
        timings.append(time.perf_counter() - t0)
        size = len(response.data)
    series = sum(
        1
        for line in response.get_data(as_text=True).splitlines()
        if line and not line.startswith("#")
    )
    p50 = pct(timings, 0.5)
    print(
        f"scrape of /api/metrics: {series} samples, {size / 1024:.0f} KiB; "
        f"p50 {p50 * 1e3:.1f} ms, max {max(timings) * 1e3:.1f} ms over {repeats} "
        f"(goal < 50 ms)"
    )
    return p50


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--mode", choices=("all", "in-process", "export", "gunicorn"), default="all"
    )
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--per-round", type=int, default=300)
    parser.add_argument("--scrapes", type=int, default=30)
    parser.add_argument("--served-rounds", type=int, default=6)
    parser.add_argument("--seconds", type=int, default=5, help="gunicorn: per round and side")
    parser.add_argument("--connections", type=int, default=8, help="gunicorn: keep-alive clients")
    parser.add_argument("--threads", type=int, default=8, help="gunicorn: GUNICORN_THREADS")
    parser.add_argument(
        "--postgres",
        default=os.environ.get("RECON_BENCH_POSTGRES_URL"),
        help="gunicorn: a PostgreSQL server URL (its maintenance DB) to create two scratch "
        "databases on; default SQLite files (see README: lock waits dominate there)",
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="recon-bench-") as tmp, otlp_sink() as sink:
        OTLP_ENDPOINT["url"] = sink
        if args.mode in ("all", "in-process"):
            overhead(Path(tmp), args.rounds, args.per_round)
            scrape_cost(Path(tmp), args.scrapes)
        if args.mode in ("all", "export"):
            export_costs(Path(tmp), args.scrapes, build, fill_registry, sink)
        if args.mode in ("all", "gunicorn"):
            served(
                Path(tmp),
                args.served_rounds,
                args.seconds,
                args.connections,
                args.threads,
                postgres=args.postgres,
            )


if __name__ == "__main__":
    main()
