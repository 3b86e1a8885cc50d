"""One reconciliation in partitions: split by key, map the leading passes, reduce the rest.

The plan (DESIGN section 17), as a library every runner shares:

1. ``plan_partitions(rules, partitions)``: the leading passes are those before
   the first pass whose ``match_on`` lacks ``key``. Every candidate of such a
   pass shares its normalised key, so records split by a hash of that key
   never need a counterpart from another part.
2. ``split_sources``: both sides written as N Parquet files by that hash
   (``hash(normalised key) % N``; empty keys all land in one part).
3. ``run_partition`` (the map, any process on any machine): the leading
   passes on one part, with the same engine code; writes the records they
   matched (``side`` plus results.RECORD_COLUMNS) and returns the passes' counts.
4. ``reduce_partitions``: loads both whole sides, takes the parts' records as
   decided, runs the remaining passes and the breaks on what is left, and
   writes the one results file and summary, as ``run_reconciliation`` would.
   When every pass leads and ``break_on`` has the key, breaks never cross a
   part either: the parts pair them too and the reduce only merges.

Why the answer is the same, byte for byte: the greedy assignment of a pass
decides a pair only against pairs sharing one of its records, and those share
its key, so it decides the same inside a part as over the whole; group passes
on the key, repeated keys and ``match_id`` (the lowest left row, source row
numbers are kept) are local to a key in the same way. The remaining passes
and the breaks see exactly the records the single run would offer them, and
the results are written by the same writer from the same values. Counts of
the leading passes (estimate, candidates, matches) are sums over the parts.

Choices: rules whose first pass lacks the key have nothing to split, and run
unpartitioned (``partitions`` 1 in the summary); ``RECON_MAX_CANDIDATES``
applies to each part's passes, so a partitioned run accepts jobs whose whole
estimate would exceed it; each part's process gets the whole memory limit.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from recon.engine.errors import EngineCancelled, EngineError
from recon.engine.load import amount_scale, connect
from recon.engine.results import record_table_sql as record_query
from recon.engine.results import write_results
from recon.engine.rules import Rules
from recon.engine.run import (
    SEMI_REPEATED,
    Progress,
    Queries,
    Settings,
    Stage,
    checked_rules,
    drop_pools,
    match_all,
    match_passes,
    open_stage,
    pair_breaks,
    pools_where,
    run_reconciliation,
    sources,
    summary,
)
from recon.engine.settle import matched_pairs_sql, settle_unique_keys, worth_settling

MAX_PARTITIONS = 256
# The parts' records of each side, read once from their files (not TEMP: write_results
# reads them on cursors of its own).
MAP_RECORDS = {"left": "map_left", "right": "map_right"}
# The records a part matched, per side, in the shape write_results reads.
_RECORD_SHAPE = (
    '"row", status_code, pass_code, match_id, confidence, amount_diff, date_diff_days, diff_fields'
)


@dataclass(frozen=True)
class Plan:
    """How a run splits: the part count and how many leading passes run in the parts."""

    partitions: int
    leading: int
    # Every pass leads and break_on has the key: the parts pair the breaks too.
    breaks_in_parts: bool = False

    @property
    def splits(self) -> bool:
        return self.leading > 0


@dataclass(frozen=True)
class PartResult:
    """What the map did on one part: its records file and the leading passes' counts."""

    records: Path
    passes: list[dict[str, Any]]
    breaks: int = 0  # pairs of breaks the part found (plan.breaks_in_parts)


def leading_key_passes(rules: Rules) -> int:
    """How many passes, from the first, have ``key`` in ``match_on``."""
    count = 0
    for p in rules.passes:
        if "key" not in p.match_on:
            break
        count += 1
    return count


def plan_partitions(
    left: str | Path, right: str | Path, rules: dict[str, Any], partitions: int
) -> Plan:
    """The plan of a run in ``partitions`` parts, the rules validated against the sources."""
    if not 1 <= partitions <= MAX_PARTITIONS:
        raise EngineError(f"partitions must be between 1 and {MAX_PARTITIONS}")
    spec = checked_rules(Path(left), Path(right), rules)
    leading = leading_key_passes(spec)
    every = leading == len(spec.passes) and "key" in spec.break_on
    return Plan(partitions=partitions, leading=leading, breaks_in_parts=every)


def _quote(path: Path) -> str:
    return str(path).replace("'", "''")


def split_sources(
    left: str | Path,
    right: str | Path,
    plan: Plan,
    out_dir: str | Path,
    *,
    memory_limit: str = "1GB",
    threads: int | None = None,
) -> list[tuple[Path, Path]]:
    """Write both sides as plan.partitions Parquet files by key hash; return (left, right) per part.

    Every part gets a file for both sides, empty ones included, with the source's columns.
    """
    out = Path(out_dir)
    parts: list[list[Path]] = []
    for name, source in (("left", Path(left)), ("right", Path(right))):
        if not source.is_file():
            raise EngineError(f"{name} source {source} does not exist")
        amount_scale(source, name)  # the canonical columns are there
        target = out / name
        with tempfile.TemporaryDirectory(prefix="recon-split-", dir=out) as spill:
            con = connect(memory_limit=memory_limit, temp_dir=Path(spill), threads=threads)
            try:
                con.execute(
                    f"""COPY (SELECT *, CAST(hash(nrm_key(CAST("key" AS VARCHAR)))
                                         % {plan.partitions} AS INTEGER) AS recon_part
                              FROM read_parquet(?))
                        TO '{_quote(target)}'
                        (FORMAT parquet, COMPRESSION zstd, PARTITION_BY (recon_part))""",  # noqa: S608
                    [str(source)],
                )
                parts.append([_one_file(con, source, target, i) for i in range(plan.partitions)])
            finally:
                con.close()
    return list(zip(parts[0], parts[1], strict=True))


def _one_file(con: Any, source: Path, target: Path, part: int) -> Path:
    """The part's single Parquet file (DuckDB writes a directory per part, or none when empty)."""
    path = target / f"part-{part}.parquet"
    folder = target / f"recon_part={part}"
    files = sorted(folder.glob("*.parquet")) if folder.is_dir() else []
    if len(files) == 1:
        os.replace(files[0], path)
    else:  # empty (no directory), or written as several files: one file either way
        query = (
            "SELECT * FROM read_parquet(?) LIMIT 0"
            if not files
            else "SELECT * EXCLUDE (recon_part) FROM read_parquet(?, hive_partitioning = true)"
        )
        con.execute(
            f"COPY ({query}) TO '{_quote(path)}' (FORMAT parquet, COMPRESSION zstd)",
            [str(source)] if not files else [[str(f) for f in files]],
        )
    shutil.rmtree(folder, ignore_errors=True)
    return path


def run_partition(
    left: str | Path,
    right: str | Path,
    rules: dict[str, Any],
    plan: Plan,
    out_path: str | Path,
    *,
    settings: Settings | None = None,
) -> PartResult:
    """The map: the plan's leading passes on one part; write the records they matched."""
    settings = settings or Settings()
    out = Path(out_path)
    with open_stage(Path(left), Path(right), rules, out.parent, settings) as stage:
        breaks = 0
        if plan.breaks_in_parts:  # the whole run, as one would, on the part
            queries, counts, breaks = match_all(stage)
        else:
            queries, counts = _leading_records(stage, plan.leading)

        def side_records(side: str) -> str:
            union = " UNION ALL ".join(queries[0] if side == "left" else queries[1])
            return f"SELECT '{side}' AS side, * FROM ({union})"  # noqa: S608

        tmp = out.with_name(f".{out.name}.{uuid.uuid4().hex}.tmp")
        try:
            stage.con.execute(
                f"""COPY ({side_records("left")} UNION ALL {side_records("right")})
                    TO '{_quote(tmp)}' (FORMAT parquet, COMPRESSION zstd)"""
            )
            os.replace(tmp, out)
        finally:
            tmp.unlink(missing_ok=True)
    return PartResult(records=out, passes=counts, breaks=breaks)


def _leading_records(stage: Stage, leading: int) -> tuple[Queries, list[dict[str, Any]]]:
    """The leading passes on the stage (no breaks: the reduce pairs those); their records."""
    con, sides = stage.con, stage.sides
    lead = Rules(passes=stage.spec.passes[:leading], break_on=())
    settled = None
    if worth_settling(lead):
        settled = settle_unique_keys(con, lead, sides, stage.scale)
    pools = sources(sides)
    if settled:
        pools = pools_where(con, pools, "repeat", SEMI_REPEATED)
    pools, _, counts = match_passes(
        stage, range(leading), pools, settled=settled, complete=settled is None
    )
    drop_pools(con, pools)
    stage.checkpoint(1 + leading, "write")
    settles = settled.leading if settled else 0
    suggest = [i for i, p in enumerate(lead.passes[:settles]) if p.action == "suggest"]
    left, right = (
        [record_query(r, side) for r in stage.records]
        + ([matched_pairs_sql(side, suggest)] if settles else [])
        for side in ("left", "right")
    )
    return (left, right), counts


def _merge_counts(parts: list[PartResult], leading: int, total_rows: int) -> list[dict[str, Any]]:
    """The leading passes' summaries: each count summed over the parts, the rate over all rows."""
    merged = []
    for i in range(leading):
        entry = dict(parts[0].passes[i])
        for key in ("candidates", "estimate", "matches", "left_rows", "right_rows"):
            entry[key] = sum(int(p.passes[i][key]) for p in parts)
        rows = entry["left_rows"] + entry["right_rows"]
        entry["match_rate"] = round(rows / total_rows, 4) if total_rows else 0.0
        merged.append(entry)
    return merged


def reduce_partitions(
    left: str | Path,
    right: str | Path,
    rules: dict[str, Any],
    plan: Plan,
    parts: list[PartResult],
    out_path: str | Path,
    *,
    settings: Settings | None = None,
) -> dict[str, Any]:
    """The reduce: the remaining passes and the breaks on what the parts left; one results file.

    Returns the summary ``run_reconciliation`` returns for the same inputs, with ``partitions``.
    """
    started = time.perf_counter()
    settings = settings or Settings()
    out = Path(out_path)
    if len(parts) != plan.partitions:
        raise EngineError(f"the reduce needs all {plan.partitions} parts, got {len(parts)}")
    with open_stage(Path(left), Path(right), rules, out.parent, settings) as stage:
        con, spec, sides = stage.con, stage.spec, stage.sides
        files = ", ".join(f"'{_quote(p.records)}'" for p in parts)
        for name, table in MAP_RECORDS.items():
            con.execute(
                f"""CREATE TABLE {table} AS SELECT {_RECORD_SHAPE}
                    FROM read_parquet([{files}]) WHERE side = '{name}'"""  # noqa: S608
            )
        if plan.breaks_in_parts:
            later: list[dict[str, Any]] = []
            breaks = sum(p.breaks for p in parts)
        else:
            later, breaks = _remaining_passes(stage, plan)
        stage.checkpoint(2 + len(spec.passes), "write")
        queries = tuple(
            [f"SELECT {_RECORD_SHAPE} FROM {MAP_RECORDS[side]}"]  # noqa: S608
            + [record_query(r, side) for r in stage.records]
            for side in ("left", "right")
        )
        written = write_results(
            con, sides, (queries[0], queries[1]), stage.pass_names, stage.scale, out
        )
        total_rows = stage.total_rows
        passes = _merge_counts(parts, plan.leading, total_rows) + later
    result = summary(written, passes, breaks, stage.scale, total_rows, started)
    result["partitions"] = plan.partitions
    return result


def _remaining_passes(stage: Stage, plan: Plan) -> tuple[list[dict[str, Any]], int]:
    """The passes after the leading ones and the breaks, on what the parts left."""
    con, spec, sides = stage.con, stage.spec, stage.sides
    pools = []
    for side in sides:
        table = f"{side.name[0]}_pool_left"
        con.execute(
            f"""CREATE TEMP TABLE {table} AS SELECT p.* FROM {side.table} p
                ANTI JOIN {MAP_RECORDS[side.name]} m
                ON p.row = m.row"""  # noqa: S608
        )
        pools.append(table)
    pools, _, later = match_passes(
        stage, range(plan.leading, len(spec.passes)), pools, settled=None, complete=True
    )
    stage.checkpoint(1 + len(spec.passes), "break")
    return later, pair_breaks(stage, pools)


def run_partitioned(
    left: str | Path,
    right: str | Path,
    rules: dict[str, Any],
    out_path: str | Path,
    *,
    partitions: int,
    processes: int | None = None,
    memory_limit: str = "1GB",
    temp_dir: str | Path | None = None,
    threads: int | None = None,
    max_candidates: int = 50_000_000,
    progress: Progress | None = None,
    should_cancel: Callable[[], bool] | None = None,
) -> dict[str, Any]:
    """run_reconciliation's answer, computed by the plan: the parts in local processes.

    ``processes`` (default: one per part, at most one per core) run the map;
    with 1 the parts run one after the other in this process. Progress: the
    split to 0.1, the map to 0.8, the reduce to 1.
    """
    started = time.perf_counter()
    report = progress or (lambda _f, _n: None)
    plan = plan_partitions(left, right, rules, partitions)
    if not plan.splits:
        result = run_reconciliation(
            left,
            right,
            rules,
            out_path,
            memory_limit=memory_limit,
            temp_dir=temp_dir,
            threads=threads,
            max_candidates=max_candidates,
            progress=progress,
            should_cancel=should_cancel,
        )
        result["partitions"] = 1
        return result
    base = Path(temp_dir) if temp_dir is not None else Path(tempfile.gettempdir())
    base.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="recon-parts-", dir=base))
    workers = processes or min(plan.partitions, os.cpu_count() or 1)
    part_threads = threads or max(1, (os.cpu_count() or 1) // workers)
    part_settings = Settings(
        memory_limit=memory_limit,
        temp_dir=work,
        threads=part_threads,
        max_candidates=max_candidates,
        should_cancel=should_cancel if workers == 1 else None,
    )
    try:
        report(0.0, "split")
        inputs = split_sources(left, right, plan, work, memory_limit=memory_limit, threads=threads)
        report(0.1, "map")
        results = _map(inputs, rules, plan, work, part_settings, workers, report, should_cancel)
        settings = replace(
            part_settings,
            threads=threads,
            progress=lambda f, name: report(0.8 + 0.2 * f, name),
            should_cancel=should_cancel,
        )
        result = reduce_partitions(left, right, rules, plan, results, out_path, settings=settings)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report(1.0, "done")
    result["duration_seconds"] = round(time.perf_counter() - started, 3)
    return result


def _map(
    inputs: list[tuple[Path, Path]],
    rules: dict[str, Any],
    plan: Plan,
    work: Path,
    settings: Settings,
    workers: int,
    report: Progress,
    should_cancel: Callable[[], bool] | None,
) -> list[PartResult]:
    """Every part's map, in this process (workers 1) or a pool of fresh processes."""
    outs = [work / f"records-{i}.parquet" for i in range(len(inputs))]
    if workers == 1:
        done = []
        for i, ((lp, rp), out) in enumerate(zip(inputs, outs, strict=True)):
            done.append(run_partition(lp, rp, rules, plan, out, settings=settings))
            report(0.1 + 0.7 * (i + 1) / len(inputs), "map")
        return done
    # Fresh interpreters: a fork would copy this process's DuckDB threads and locks.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        futures: dict[Future[PartResult], int] = {
            pool.submit(run_partition, lp, rp, rules, plan, out, settings=settings): i
            for i, ((lp, rp), out) in enumerate(zip(inputs, outs, strict=True))
        }
        results: dict[int, PartResult] = {}
        pending = set(futures)
        while pending:
            finished, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
            for future in finished:
                results[futures[future]] = future.result()
            if should_cancel is not None and should_cancel():
                for future in pending:
                    future.cancel()
                raise EngineCancelled("cancelled during the map")
            report(0.1 + 0.7 * len(results) / len(inputs), "map")
    return [results[i] for i in range(len(inputs))]
