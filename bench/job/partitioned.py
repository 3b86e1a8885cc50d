"""A job in partitions on two Celery workers (PostgreSQL, Redis), optionally one killed mid-map.

    .venv/bin/python bench/job/partitioned.py --rows 10000000 --partitions 4 [--kill] \
        [--recipe two_pass] [--memory-limit 4GB] [--database URL] [--redis URL]

Builds a throwaway PostgreSQL database, ingests both generated sides with recon's
parser (``bench/engine/stored.py``), creates a dry-run job (results and summary,
no exceptions: ``bench/job/publish.py`` measures the publish) and sends it to two
real Celery workers with ``RECON_JOB_PARTITIONS``. It polls the job and prints the
phases as the job reports them: split (claim to ``map``), map (to the first
``reduce: ...``), reduce and publish (to ``succeeded``). With ``--kill`` the first
worker is SIGKILLed (its whole process group) once one part is done and a new
worker started in its place: the lost part comes back after the visibility
timeout (``--visibility``), the other parts are not redone. Finally the engine runs
the same job in one piece in this process and the two results files are compared
byte for byte.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench" / "engine")]

from data import RECIPES  # noqa: E402 - bench-local module
from stored import (  # noqa: E402
    bench_app,
    service_arguments,
    store_sources,
    throwaway_database,
)

from tests.servers import start_celery_worker  # noqa: E402


def _poll(app: Any, job_id: int, deadline: float, on_tick: Any) -> dict[str, float]:
    """Poll the job until it ends; return when each phase was first seen (monotonic)."""
    from recon.extensions import db
    from recon.jobs.models import Job

    seen: dict[str, float] = {}
    while time.monotonic() < deadline:
        with app.app_context():
            job = db.session.get(Job, job_id)
            status, progress = job.status.value, dict(job.progress or {})
            db.session.remove()
        now = time.monotonic()
        phase = str(progress.get("pass") or "")
        if status == "running":
            seen.setdefault("claimed", now)
        if phase in ("split", "map"):
            seen.setdefault(phase, now)
        if phase.startswith("reduce"):
            seen.setdefault("reduce", now)
        on_tick(progress)
        if status in ("succeeded", "failed", "cancelled"):
            seen[status] = now
            return seen
        time.sleep(0.25)
    raise SystemExit("the job did not end in time")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--recipe", choices=sorted(RECIPES), default="two_pass")
    parser.add_argument("--memory-limit", default="4GB")
    parser.add_argument("--kill", action="store_true")
    parser.add_argument("--visibility", type=int, default=60)
    service_arguments(parser)
    args = parser.parse_args()
    rules = RECIPES[args.recipe]["rules"]
    from celery import Celery

    from recon.engine import run_reconciliation
    from recon.extensions import db
    from recon.jobs.models import Job
    from recon.jobs.service import create_job
    from recon.projects.models import Project

    with (
        tempfile.TemporaryDirectory(prefix="recon-bench-job-parts-") as tmp,
        throwaway_database(args.database, "recon_bench_parts") as url,
    ):
        work = Path(tmp)
        app = bench_app(url, work / "data")
        storage = app.extensions["recon_storage"]
        started = time.perf_counter()
        with app.app_context():
            project = Project(name="bench")
            db.session.add(project)
            db.session.flush()
            left, right = store_sources(storage, work, project, args.rows, args.recipe)
            job = create_job(
                session=db.session,
                project=project,
                left_source_id=left.id,
                right_source_id=right.id,
                rules=rules,
                dry_run=True,
                enqueue=lambda _job_id: None,
            )
            job_id = job.id
            left_path, right_path = storage.path(left.path), storage.path(right.path)
            db.session.commit()
            db.session.remove()
        print(f"{args.rows:,} records a side ingested in {time.perf_counter() - started:.1f} s")
        queue = f"recon-bench-{uuid.uuid4().hex[:8]}"
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "RECON_DATABASE_URL": url,
            "RECON_DATA_DIR": str(work / "data"),
            "RECON_REDIS_URL": args.redis,
            "RECON_JOB_QUEUE": queue,
            "RECON_CACHE_NAMESPACE": queue,
            "RECON_ENGINE_MEMORY_LIMIT": args.memory_limit,
            "RECON_PARTITION_ROWS": "1",
            "RECON_JOB_PARTITIONS": str(args.partitions),
            "RECON_JOB_VISIBILITY_TIMEOUT": str(args.visibility),
            "RECON_JOB_STALE_SECONDS": str(args.visibility * 10),
            "RECON_JOB_TIME_LIMIT": "3600",
        }
        workers: list[subprocess.Popen] = []

        def start() -> None:
            log = (work / f"worker-{len(workers)}.log").open("wb")
            workers.append(start_celery_worker(queue, env, log, own_session=True))

        start()
        start()
        killed: list[float] = []

        def on_tick(progress: dict[str, Any]) -> None:
            if args.kill and not killed and int(progress.get("parts_done") or 0) >= 1:
                os.killpg(workers[0].pid, signal.SIGKILL)
                workers[0].wait()
                killed.append(time.monotonic())
                print(f"worker 0 killed with {progress['parts_done']} parts done; a new one starts")
                start()

        client = Celery(broker=args.redis)
        try:
            sent = time.monotonic()
            client.send_task("recon.run_job", args=[job_id], queue=queue)
            seen = _poll(app, job_id, sent + 7200, on_tick)
        finally:
            for proc in workers:
                if proc.poll() is None:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
        with app.app_context():
            job = db.session.get(Job, job_id)
            status, summary, result_path, error = (
                job.status.value,
                job.summary,
                job.result_path,
                job.error,
            )
            db.session.remove()
        if status != "succeeded":
            raise SystemExit(f"the job ended {status}: {error}")
        claimed = seen.get("claimed", sent)
        split_end, map_end = seen.get("map", claimed), seen.get("reduce", claimed)
        end = seen[status]
        print(
            f"job {status} in {end - sent:.1f} s with {summary['partitions']} partitions on two "
            f"workers: queue {claimed - sent:.1f}, split {split_end - claimed:.1f}, "
            f"map {map_end - split_end:.1f}, reduce + publish {end - map_end:.1f} s"
        )
        if killed:
            print(f"the kill came {killed[0] - split_end:.1f} s into the map")
        one = work / "single.parquet"
        begun = time.perf_counter()
        single = run_reconciliation(
            left_path, right_path, rules, one, memory_limit=args.memory_limit, temp_dir=work
        )
        single_seconds = time.perf_counter() - begun
        same = storage.path(result_path).read_bytes() == one.read_bytes()
        rest = {k: v for k, v in summary.items() if k not in ("partitions", "duration_seconds")}
        equal = rest == {k: v for k, v in single.items() if k != "duration_seconds"}
        print(
            f"single run in this process: {single_seconds:.1f} s; the job took "
            f"{(end - sent) / single_seconds:.2f}x; results byte-identical: {same}; "
            f"summary equal: {equal}"
        )
        return 0 if same and equal else 1


if __name__ == "__main__":
    sys.exit(main())
