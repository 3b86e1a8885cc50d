"""Server time of every workspace page on a large job, p95 per page.

Builds the job of bench/state (``--rows`` records a side, every non-matched record an
exception, ``--decisions`` of them decided by people) in a temporary SQLite database,
signs in as an admin through the login form and requests each page ``--repeat`` times
through the app in process (no network: the figure is the server's time). Prints the
median and p95 per page, and the time of ``/api/health`` in the same run as a baseline
(the machine may be loaded: compare ratios, not milliseconds).

    .venv/bin/python bench/workspace/run.py --rows 100000 --repeat 20
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import logging
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "engine"))
_spec = importlib.util.spec_from_file_location("bench_state", HERE.parent / "state" / "run.py")
assert _spec is not None and _spec.loader is not None
_state = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_state)
build = _state.build  # bench/state's builder: the same job, the same exceptions

from recon import create_app  # noqa: E402
from recon.auth.service import issue_token  # noqa: E402
from recon.extensions import db  # noqa: E402
from recon.jobs.results_sql import encode_cursor  # noqa: E402
from recon.review.models import ReconException  # noqa: E402
from recon.users.models import Role, User  # noqa: E402
from recon.users.service import create_user  # noqa: E402

PASSWORD = "bench workspace password"  # noqa: S105 - a throwaway user in a temp database


def pages(pid: int, jid: int, eid: int, rows: int) -> dict[str, str]:
    base = f"/projects/{pid}"
    return {
        "health (baseline)": "/api/health",
        "projects": "/",
        "project": base,
        "upload": f"{base}/upload",
        "rules": f"{base}/rules",
        "job": f"{base}/jobs/{jid}",
        "results p1": f"{base}/jobs/{jid}/results",
        "results p100": f"{base}/jobs/{jid}/results?page=100",
        "results last page": f"{base}/jobs/{jid}/results?page={(2 * rows) // 50}",
        "results deep (after)": f"{base}/jobs/{jid}/results?after="
        + encode_cursor("right", rows // 2),
        "results unmatched": f"{base}/jobs/{jid}/results?status=unmatched",
        "results key text": f"{base}/jobs/{jid}/results?q=K00000123",
        "exceptions": f"{base}/exceptions",
        "exceptions largest": f"{base}/exceptions?unresolved=true&sort=largest",
        "exceptions p200": f"{base}/exceptions?unresolved=true&page=200",
        "exception": f"{base}/exceptions/{eid}",
        "manual match": f"{base}/jobs/{jid}/match",
        "approvals": f"{base}/approvals",
        "analytics": f"{base}/analytics",
        "audit": f"{base}/audit",
        # The API's reads of the same data through the same service functions: the baseline
        # a workspace page's extra time is measured against.
        "API results p1": f"/api{base}/jobs/{jid}/results",
        "API results key text": f"/api{base}/jobs/{jid}/results?q=K00000123",
        "API exceptions": f"/api{base}/exceptions?unresolved=true",
    }


def reuse(where: Path) -> Any:
    """The app on a job built before by ``--keep``."""
    return create_app(
        {
            "RECON_DATABASE_URL": f"sqlite:///{where / 'bench.db'}",
            "RECON_DATA_DIR": str(where / "data"),
            "RECON_REDIS_URL": None,
            "RECON_ADMIN_PASSWORD": None,
            "RECON_JOB_RUNNER": "inline",
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--decisions", type=int, default=1_000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument(
        "--keep", type=Path, help="build in this directory and keep it; reuse it if built"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="recon-workspace-") as tmp:
        where = args.keep or Path(tmp)
        where.mkdir(parents=True, exist_ok=True)
        if (where / "bench.db").exists():
            app, job_id = reuse(where), 1
        else:
            app, job_id = build(where, args.rows, args.decisions)
        with app.app_context():
            db.session.commit()
            user = db.session.query(User).filter_by(username="bench").one_or_none()
            user = user or create_user(
                session=db.session, username="bench", password=PASSWORD, role=Role.admin
            )
            raw, _ = issue_token(session=db.session, user=user, ttl=3600)
            first = db.session.query(ReconException).filter_by(job_id=job_id).first()
            pid, eid = first.project_id, first.id
            db.session.remove()
        logging.disable(logging.INFO)  # the access log line of every request
        # As ops/gunicorn.conf.py's post_worker_init does in a served worker: the app's
        # (and here the build's) long-lived objects out of every full collection.
        gc.collect()
        gc.freeze()
        client = app.test_client()
        login = client.get("/login").get_data(as_text=True)
        token = re.search(r'name="csrf_token" value="([^"]+)"', login).group(1)
        client.post("/login", data={"username": "bench", "password": PASSWORD, "csrf_token": token})
        print(f"\n{args.rows:,} records a side; {args.repeat} requests a page, in process\n")
        print(
            f"{'page':<22}{'status':>7}{'first ms':>10}{'median ms':>11}{'p95 ms':>9}"
            f"{'x health':>10}"
        )
        baseline = None
        for name, url in pages(pid, job_id, eid, args.rows).items():
            times, status = [], 0
            for _ in range(args.repeat):
                headers = {"Authorization": f"Bearer {raw}"} if url.startswith("/api") else {}
                elapsed, status = timed(client, "GET", url, headers)
                times.append(elapsed)
            baseline = report(name, status, times, baseline)
        # Each decision drops the job's state and the analytics: the pages people open
        # next pay for them again (a resolve and a reopen of one exception, alternately).
        print("\nafter each decision (a PATCH of one exception through the API):")
        bearer = {"Authorization": f"Bearer {raw}"}
        changes = ({"status": "resolved", "reason_code": "other"}, {"status": "reopened"})
        after: dict[str, list[float]] = {"decision": [], "job": [], "analytics": []}
        statuses: dict[str, int] = {}
        for i in range(args.repeat):
            elapsed, statuses["decision"] = timed(
                client, "PATCH", f"/api/projects/{pid}/exceptions/{eid}", bearer, changes[i % 2]
            )
            after["decision"].append(elapsed)
            for name in ("job", "analytics"):
                url = pages(pid, job_id, eid, args.rows)[name]
                elapsed, statuses[name] = timed(client, "GET", url, {})
                after[name].append(elapsed)
        for name, times in after.items():
            report(f"{name} (after)", statuses[name], times, baseline)


def timed(
    client: Any, method: str, url: str, headers: dict[str, str], body: Any = None
) -> tuple[float, int]:
    """The request's time in ms and its status."""
    started = time.perf_counter()
    response = client.open(url, method=method, headers=headers, json=body)
    response.get_data()
    return (time.perf_counter() - started) * 1000, response.status_code


def report(name: str, status: int, times: list[float], baseline: float | None) -> float:
    """Print a page's first, median and p95 times; return the baseline (the first median)."""
    first = times[0]  # caches cold: the job state, analytics, decisions
    ordered = sorted(times)
    p95 = ordered[max(0, round(0.95 * len(ordered)) - 1)]
    median = statistics.median(ordered)
    baseline = baseline or median
    print(
        f"{name:<22}{status:>7}{first:>10.1f}{median:>11.1f}{p95:>9.1f}{median / baseline:>10.1f}"
    )
    return baseline


if __name__ == "__main__":
    main()
