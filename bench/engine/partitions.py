"""The partitioned plan against one run: its overhead here, its speed-up on paper.

    .venv/bin/python bench/engine/partitions.py --rows 1000000 10000000 --partitions 1 2 4 \
        [--recipe four_pass] [--memory-limit 4GB] [--processes 2]

For each size, both sides are generated (``data.py``) and converted to canonical
Parquet by a typed DuckDB COPY (as ``run.py --ingest duckdb``), then:

- ``single``: ``run_reconciliation`` once (the baseline of every ratio);
- per N in ``--partitions``, the plan step by step in this process (split, each
  part's map one after the other with all cores, the reduce), every step timed,
  and the results file compared byte for byte with the single run's;
- per N, ``run_partitioned`` with ``--processes`` local processes (the wall time
  of the plan on this machine).

On paper, W workers with one part each take ``split + map / W + reduce`` where
``map`` is the sum of the parts' map times at the largest N measured (a part's
work shrinks with its share of the rows); the speed-up is ``single`` over that.
The split and the reduce run once, on one machine: they bound the speed-up.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parents[1]), str(HERE)]

from data import RECIPES, generate  # noqa: E402 - bench-local module
from run import _convert_both  # noqa: E402 - the typed DuckDB conversion of run.py

from recon.engine import run_reconciliation  # noqa: E402
from recon.engine.partition import (  # noqa: E402
    plan_partitions,
    reduce_partitions,
    run_partition,
    run_partitioned,
    split_sources,
)
from recon.engine.run import Settings  # noqa: E402


def _timed(fn: Any, *args: Any, **kwargs: Any) -> tuple[Any, float]:
    started = time.perf_counter()
    value = fn(*args, **kwargs)
    return value, time.perf_counter() - started


def stepwise(
    left: Path, right: Path, rules: dict[str, Any], n: int, work: Path, memory_limit: str
) -> dict[str, Any]:
    """The plan's steps in this process, each timed; the results file's path."""
    work.mkdir()
    settings = Settings(memory_limit=memory_limit, temp_dir=work)
    plan = plan_partitions(left, right, rules, n)
    parts, split = _timed(split_sources, left, right, plan, work, memory_limit=memory_limit)
    mapped, times = [], []
    for i, (lp, rp) in enumerate(parts):
        out = work / f"records-{i}.parquet"
        result, seconds = _timed(run_partition, lp, rp, rules, plan, out, settings=settings)
        mapped.append(result)
        times.append(seconds)
    results = work / "results.parquet"
    _, reduce = _timed(
        reduce_partitions, left, right, rules, plan, mapped, results, settings=settings
    )
    return {"split": split, "parts": times, "reduce": reduce, "results": results}


def measure(rows: int, args: argparse.Namespace) -> None:
    rules = RECIPES[args.recipe]["rules"]
    with tempfile.TemporaryDirectory(prefix="recon-bench-parts-") as tmp:
        work = Path(tmp)
        left_csv, right_csv = generate(work, rows, args.seed, args.recipe)
        _convert_both(left_csv, right_csv, work, args.memory_limit)
        left, right = work / "left.parquet", work / "right.parquet"
        single_out = work / "single.parquet"
        _, single = _timed(
            run_reconciliation,
            left,
            right,
            rules,
            single_out,
            memory_limit=args.memory_limit,
            temp_dir=work,
        )
        expected = single_out.read_bytes()
        print(f"\n{rows:,} x ~{rows:,} ({args.recipe}): single run {single:.2f} s")
        print(
            f"{'N':>3} {'split':>7} {'map sum':>8} {'map max':>8} {'reduce':>7} "
            f"{'steps':>7} {'x single':>8}  {f'{args.processes} procs':>9} {'x single':>8}  same"
        )
        last: dict[str, Any] = {}
        for n in args.partitions:
            steps = stepwise(left, right, rules, n, work / f"steps-{n}", args.memory_limit)
            out = work / f"procs-{n}.parquet"
            _, wall = _timed(
                run_partitioned,
                left,
                right,
                rules,
                out,
                partitions=n,
                processes=min(n, args.processes),
                memory_limit=args.memory_limit,
                temp_dir=work,
            )
            same = steps["results"].read_bytes() == expected == out.read_bytes()
            total = steps["split"] + sum(steps["parts"]) + steps["reduce"]
            print(
                f"{n:>3} {steps['split']:>7.2f} {sum(steps['parts']):>8.2f} "
                f"{max(steps['parts']):>8.2f} {steps['reduce']:>7.2f} {total:>7.2f} "
                f"{total / single:>8.2f}  {wall:>9.2f} {wall / single:>8.2f}  {same}"
            )
            if not same:
                raise SystemExit(f"partitions={n}: the results differ from the single run's")
            last = steps
        serial = last["split"] + last["reduce"]
        for workers in (8, 32):
            paper = serial + sum(last["parts"]) / workers
            print(
                f"on paper, {workers} workers: {paper:.2f} s = split + map/{workers} + reduce, "
                f"{single / paper:.2f}x the single run"
            )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000])
    parser.add_argument("--partitions", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--recipe", choices=sorted(RECIPES), default="four_pass")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--memory-limit", default="4GB")
    args = parser.parse_args()
    for rows in args.rows:
        measure(rows, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
