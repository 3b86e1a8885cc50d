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
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench" / "engine")]

import sqlalchemy as sa  # noqa: E402
from data import RECIPES, generate  # noqa: E402 - bench-local module

# The two-pass recipe (exact and tolerant on key, breaks): the figures in the README.
RULES = RECIPES["two_pass"]["rules"]
from flask_migrate import upgrade  # noqa: E402

from recon import create_app  # noqa: E402
from recon.engine import run_reconciliation  # noqa: E402
from recon.extensions import db  # noqa: E402
from recon.jobs.models import Job, JobStatus  # noqa: E402
from recon.projects.models import Project  # noqa: E402
from recon.review.models import ReconException  # noqa: E402
from recon.review.publish import publish_exceptions  # noqa: E402
from recon.sources.models import Source  # noqa: E402
from recon.sources.parsing import ingest_file  # noqa: E402


@contextmanager
def postgres(url: str) -> Any:
    base = sa.make_url(url)
    name = f"recon_bench_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def make_app(tmp: Path, url: str) -> Any:
    app = create_app(
        {
            "RECON_DATABASE_URL": url,
            "RECON_DATA_DIR": str(tmp / "data"),
            "RECON_REDIS_URL": None,
            "RECON_ADMIN_PASSWORD": None,
            "RECON_JOB_RUNNER": "inline",
        }
    )
    with app.app_context():
        upgrade()
        db.session.remove()
    return app


def sources(storage: Any, tmp: Path, project: Project, rows: int) -> list[Source]:
    left_csv, right_csv = generate(tmp, rows, 7, "two_pass")
    out_sources = []
    for name, csv in (("left", left_csv), ("right", right_csv)):
        out = storage.path(f"projects/{project.id}/sources/{name}.parquet")
        out.parent.mkdir(parents=True, exist_ok=True)
        result = ingest_file(csv, out, filename=csv.name, temp_dir=storage.tmp_dir)
        source = Source(
            project_id=project.id,
            name=name,
            filename=csv.name,
            format="csv",
            sha256=name * 8,
            size_bytes=csv.stat().st_size,
            row_count=result.row_count,
            options=result.detected_options,
            mapping=result.mapping,
            schema=result.schema,
            columns=list(result.columns),
            amount_scale=result.amount_scale,
            sums=result.sums,
            path=str(out.relative_to(storage.root)),
        )
        db.session.add(source)
        out_sources.append(source)
    db.session.flush()
    return out_sources


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
    app = make_app(tmp, url)
    with app.app_context():
        storage = app.extensions["recon_storage"]
        results = tmp / "results.parquet"
        inserted, carried, engine = [], [], []
        counts: dict = {}
        for attempt in range(repeat):
            project = Project(name=f"bench {attempt}", description="")
            db.session.add(project)
            db.session.flush()
            left, right = sources(storage, tmp, project, rows)
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
                with postgres(args.postgres) as url:
                    run("postgres", Path(tmp), url, args.rows, args.repeat)


if __name__ == "__main__":
    main()
