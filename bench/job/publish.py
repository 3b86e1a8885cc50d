"""Publish throughput: exceptions/s inserted (a first job) and carried over (a re-run).

    .venv/bin/python bench/job/publish.py --rows 100000 [--db sqlite postgres] [--repeat 3]

For each database (SQLite file; PostgreSQL in a throwaway database created on the
server of ``RECON_TEST_DATABASE_URL`` or ``--postgres``, dropped afterwards): the
seeded benchmark data of ``bench/engine`` is ingested, the engine runs once, then
``publish_exceptions`` runs and commits on a job row of its own, as the runner calls
it: first on an empty pair (every exception inserted), then on a second job of the
same pair (every exception carried over). Prints the seconds, rows/s and the ratio
to the engine's own time in the same run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench" / "engine")]

from data import RECIPES  # noqa: E402 - bench-local module
from stored import bench_app, store_sources, throwaway_database  # noqa: E402 - bench-local module

# The two-pass recipe (exact and tolerant on key, breaks): the figures in the README.
RULES = RECIPES["two_pass"]["rules"]

from recon.engine import run_reconciliation  # noqa: E402
from recon.extensions import db  # noqa: E402
from recon.jobs.models import Job, JobStatus  # noqa: E402
from recon.projects.models import Project  # noqa: E402
from recon.review.models import ReconException  # noqa: E402
from recon.review.publish import publish_exceptions  # noqa: E402
from recon.sources.models import Source  # noqa: E402


def new_job(project: Project, left: Source, right: Source) -> Job:
    job = Job(
        project_id=project.id,
        left_source_id=left.id,
        right_source_id=right.id,
        rules=RULES,
        status=JobStatus.running,
        attempt=1,
    )
    db.session.add(job)
    db.session.flush()
    return job


def publish(
    storage: Any, job: Job, results: Path, left: Source, right: Source
) -> tuple[float, dict]:
    started = time.perf_counter()
    counts = publish_exceptions(
        session=db.session,
        job=job,
        results_path=results,
        left_path=storage.path(left.path),
        right_path=storage.path(right.path),
        scale_left=left.amount_scale,
        scale_right=right.amount_scale,
    )
    job.status = JobStatus.succeeded
    db.session.commit()
    return time.perf_counter() - started, counts


def run(label: str, tmp: Path, url: str, rows: int, repeat: int) -> None:
    app = bench_app(url, tmp / "data")
    with app.app_context():
        storage = app.extensions["recon_storage"]
        results = tmp / "results.parquet"
        inserted, carried, engine = [], [], []
        counts: dict = {}
        for attempt in range(repeat):
            project = Project(name=f"bench {attempt}", description="")
            db.session.add(project)
            db.session.flush()
            left, right = store_sources(storage, tmp, project, rows)
            started = time.perf_counter()
            run_reconciliation(
                storage.path(left.path),
                storage.path(right.path),
                RULES,
                results,
                temp_dir=storage.tmp_dir,
            )
            engine.append(time.perf_counter() - started)
            seconds, counts = publish(storage, new_job(project, left, right), results, left, right)
            assert counts["opened"] > 0 and counts["updated"] == 0, counts
            inserted.append(seconds)
            seconds, again = publish(storage, new_job(project, left, right), results, left, right)
            assert again["updated"] == counts["opened"] and again["opened"] == 0, again
            carried.append(seconds)
        total = db.session.query(ReconException).count()
        db.session.remove()
        db.engine.dispose()
    n = counts["opened"]
    e, i, c = (statistics.median(x) for x in (engine, inserted, carried))
    print(f"{label}: {rows} rows a side, {n} exceptions, {total} in the table, median of {repeat}")
    print(f"  engine            {e:6.2f} s")
    print(f"  publish, inserted {i:6.2f} s  {n / i:9.0f} exceptions/s  {i / e:5.2f} x engine")
    print(f"  publish, carried  {c:6.2f} s  {n / c:9.0f} exceptions/s  {c / e:5.2f} x engine")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--db", nargs="+", default=["sqlite", "postgres"])
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--postgres", default=os.environ.get("RECON_TEST_DATABASE_URL", ""))
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    for name in args.db:
        with tempfile.TemporaryDirectory() as tmp:
            if name == "sqlite":
                run("sqlite", Path(tmp), f"sqlite:///{tmp}/bench.db", args.rows, args.repeat)
            else:
                with throwaway_database(args.postgres, "recon_bench") as url:
                    run("postgres", Path(tmp), url, args.rows, args.repeat)


if __name__ == "__main__":
    main()
