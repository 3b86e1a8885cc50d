"""Reads of a large job in its current state: results pages, the job's state, exports.

Builds one job of ``--rows`` records a side (bench/engine's data: duplicate keys,
breaks, records on one side only), uploads both sides through recon's parser, runs
the engine, then stores its exceptions (about 30 % of the records) and ``--decisions``
people's decisions on them (manual matches, accepted and rejected suggestions,
resolutions) straight into a SQLite database, and times in process:

- a results page (50 records): first page, a page deep in the file (keyset ``after``),
  filtered by current status, filtered by key text;
- the job's state (computed, not cached);
- the CSV export of every record (rows/s, and the process's RSS growth).

Each read is timed with people's decisions applied (``current``) and without
(``engine``: the baseline, the same read with an empty decisions table) in the same
run; the ratio is what the current state costs. Median of ``--repeat`` runs.

    .venv/bin/python bench/state/run.py --rows 1000000 --decisions 10000
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "engine"))

from data import RECIPES  # noqa: E402 - bench-local module
from stored import bench_app, store_sources  # noqa: E402 - bench-local module

# The two-pass recipe (exact and tolerant on key, breaks): the figures in the README.
RULES = RECIPES["two_pass"]["rules"]

from recon.db_types import utcnow  # noqa: E402
from recon.engine import run_reconciliation  # noqa: E402
from recon.extensions import db  # noqa: E402
from recon.jobs.models import Job, JobStatus  # noqa: E402
from recon.jobs.results import Reader  # noqa: E402
from recon.jobs.results_sql import NO_OVERRIDES, Filters, encode_cursor  # noqa: E402
from recon.projects.models import Project  # noqa: E402
from recon.review import tallies  # noqa: E402
from recon.review.export import export_job  # noqa: E402
from recon.review.models import ManualMatch, ReconException  # noqa: E402
from recon.review.state import applied_overrides, compute_state, overrides  # noqa: E402
from recon.sources.models import Source  # noqa: E402


def timed(call: Any, repeat: int) -> float:
    runs = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        runs.append(time.perf_counter() - started)
    return statistics.median(runs)


def build(tmp: Path, rows: int, decisions: int) -> tuple[Any, int]:
    app = bench_app(f"sqlite:///{tmp / 'bench.db'}", tmp / "data")
    with app.app_context():
        storage = app.extensions["recon_storage"]
        project = Project(name="bench", description="")
        db.session.add(project)
        db.session.flush()
        sources = store_sources(storage, tmp, project, rows)
        job = Job(
            project_id=project.id,
            left_source_id=sources[0].id,
            right_source_id=sources[1].id,
            rules=RULES,
            status=JobStatus.running,
            attempt=1,
        )
        db.session.add(job)
        db.session.flush()
        relative = f"{storage.job_attempt_dir(project.id, job.id, 1)}/results.parquet"
        results = storage.path(relative)
        results.parent.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        job.summary = run_reconciliation(
            storage.path(sources[0].path),
            storage.path(sources[1].path),
            RULES,
            results,
            temp_dir=storage.tmp_dir,
        )
        print(f"engine {time.perf_counter() - started:.2f} s")
        job.status, job.result_path = JobStatus.succeeded, relative
        db.session.commit()
        _exceptions(job, results, decisions)
        job_id = job.id
        db.session.remove()
    return app, job_id


def _exceptions(job: Job, results: Path, decisions: int) -> None:
    """Every non-matched record an exception; ``decisions`` of them decided by people."""
    import duckdb

    pending = (
        duckdb.connect()
        .execute(
            'SELECT side, "row", CAST(status AS VARCHAR), match_id '  # noqa: S608
            f"FROM read_parquet('{results}') WHERE status <> 'matched' ORDER BY side, \"row\""
        )
        .fetchall()
    )
    random.seed(1)
    chosen = set(random.sample(range(len(pending)), min(decisions, len(pending))))
    pair = f"{job.left_source_id}:{job.right_source_id}"
    left_open = [p for i, p in enumerate(pending) if i in chosen and p[0] == "left"]
    right_open = [p for i, p in enumerate(pending) if i in chosen and p[0] == "right"]
    # A third of the decisions are manual matches of one left and one right record.
    matches = []
    for (_, lrow, _, _), (_, rrow, _, _) in list(zip(left_open, right_open, strict=False))[
        : decisions // 6
    ]:
        matches.append(
            ManualMatch(
                project_id=job.project_id,
                job_id=job.id,
                left_rows=[lrow],
                right_rows=[rrow],
                difference="0.00",
            )
        )
    db.session.add_all(matches)
    db.session.flush()
    in_match = {}
    for match in matches:
        in_match[("left", match.left_rows[0])] = match.id
        in_match[("right", match.right_rows[0])] = match.id
    rows = []
    opened = utcnow()  # one stamp for every exception of a publish, as publish gives
    for i, (side, row, status, match_id) in enumerate(pending):
        values = {
            "project_id": job.project_id,
            "job_id": job.id,
            "pair_key": pair,
            "kind": status,
            "side": side,
            "row": row,
            "match_id": match_id,
            "amount": "1.00",
            "scale": 2,
            "status": "open",
            "reason_code": None,  # every row the same keys: executemany takes the first's
            "manual_match_id": None,
            "opened_at": opened,
            "updated_at": opened,
        }
        if (side, row) in in_match:
            values.update(
                status="resolved",
                reason_code="matched_manually",
                manual_match_id=in_match[(side, row)],
            )
        elif i in chosen:
            values.update(status="resolved", reason_code="timing_difference")
        rows.append(values)
    db.session.execute(ReconException.__table__.insert(), rows)
    tallies.rebuild(db.session, job.project_id, pair)  # what publish does after its inserts
    db.session.commit()
    print(f"exceptions {len(rows):,}, decisions {len(chosen):,} ({len(matches):,} manual matches)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--decisions", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="recon-state-") as tmp:
        app, job_id = build(Path(tmp), args.rows, args.decisions)
        with app.app_context():
            job = db.session.get(Job, job_id)
            storage = app.extensions["recon_storage"]
            left = db.session.get(Source, job.left_source_id)
            right = db.session.get(Source, job.right_source_id)
            table = applied_overrides(session=db.session, storage=storage, job=job)
            deep = encode_cursor("right", args.rows // 2)
            reads = {
                "page 1": dict(filters=Filters(), after=None),
                "page deep (after)": dict(filters=Filters(), after=("right", args.rows // 2)),
                "status=unmatched page 1": dict(filters=Filters(status="unmatched"), after=None),
                "status=matched deep": dict(
                    filters=Filters(status="matched"), after=("right", args.rows // 2)
                ),
                "key contains": dict(filters=Filters(key="K00000123"), after=None),
            }
            print(
                f"\n{args.rows:,} records a side, {len(table):,} decisions; median of "
                f"{args.repeat} (cursor for deep pages: {deep})\n"
            )
            print(f"{'read':<26}{'current ms':>12}{'engine ms':>12}{'ratio':>8}")
            for name, read in reads.items():
                figures = []
                for view in (table, NO_OVERRIDES):

                    def page(view: Any = view, read: dict = read) -> None:
                        with Reader(
                            storage=storage, job=job, left=left, right=right, overrides=view
                        ) as reader:
                            reader.page(read["filters"], after=read["after"], offset=0, limit=50)
                            reader.count(read["filters"])

                    figures.append(timed(page, args.repeat) * 1000)
                ratio = figures[0] / figures[1]
                print(f"{name:<26}{figures[0]:>12.1f}{figures[1]:>12.1f}{ratio:>8.2f}")
            decided = timed(lambda: overrides(session=db.session, job=job), args.repeat)
            print(f"{'decisions from the DB':<26}{decided * 1000:>12.1f}")
            applied = timed(
                lambda: applied_overrides(session=db.session, storage=storage, job=job),
                args.repeat,
            )
            print(f"{'... applied to the job':<26}{applied * 1000:>12.1f}  (cached per decision)")
            state = timed(
                lambda: compute_state(session=db.session, storage=storage, job=job),
                max(1, args.repeat // 2),
            )
            print(f"{'job state':<26}{state * 1000:>12.1f}")
            gc.collect()
            process = psutil.Process(os.getpid())
            before = process.memory_info().rss
            peak = before
            started = time.perf_counter()
            written = lines = 0
            exported = export_job(session=db.session, storage=storage, job=job)
            for chunk in exported.chunks:
                written += len(chunk)
                lines += chunk.count(b"\n")
                peak = max(peak, process.memory_info().rss)
            seconds = time.perf_counter() - started
            print(
                f"\nCSV export: {lines - 1:,} records, {written / 2**20:.0f} MB in {seconds:.1f} s "
                f"({(lines - 1) / seconds:,.0f} rows/s), RSS +{(peak - before) / 2**20:.0f} MB"
            )


if __name__ == "__main__":
    main()
