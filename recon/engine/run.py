"""run_reconciliation: rules and two canonical Parquet files in, results and a summary out.

The stages a run is made of (opening both sides, the pass loop, the summary)
are shared with the partitioned plan (partition.py), which runs the same
passes on parts of the sources and merges them into the same results.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from recon.engine.breaks import run_breaks
from recon.engine.errors import EngineCancelled, EngineError
from recon.engine.load import (
    Side,
    amount_scale,
    common_scale,
    connect,
    load_side,
    source_fields,
)
from recon.engine.passes import PassResult, run_group_pass, run_pair_pass
from recon.engine.results import create_types, record_table_sql, write_results
from recon.engine.rules import Rules, validate_rules
from recon.engine.settle import (
    PAIRS,
    REPEATED,
    Settled,
    break_pairs_sql,
    matched_pairs_sql,
    settle_unique_keys,
    worth_settling,
)

Progress = Callable[[float, str], None]
SEMI_REPEATED = f"SEMI JOIN {REPEATED} x ON p.k = x.k"


@dataclass(frozen=True)
class Settings:
    """How a run may use the machine, and how it reports and stops (see run_reconciliation)."""

    memory_limit: str = "1GB"
    temp_dir: Path | None = None
    threads: int | None = None
    max_candidates: int = 50_000_000
    progress: Progress | None = None
    should_cancel: Callable[[], bool] | None = None
    on_connection: Callable[[Any], None] | None = None


@dataclass
class Stage:
    """Both sides loaded into one DuckDB connection, and the validated rules."""

    con: Any
    spec: Rules
    sides: tuple[Side, Side]
    scale: int
    settings: Settings
    records: list[str] = field(default_factory=list)

    @property
    def pass_names(self) -> list[str]:
        return [p.name for p in self.spec.passes]

    @property
    def total_rows(self) -> int:
        return self.sides[0].rows + self.sides[1].rows

    def checkpoint(self, done: int, name: str) -> None:
        _checkpoint(self.settings, self.spec, done, name)


def _checkpoint(settings: Settings, spec: Rules, done: int, name: str) -> None:
    """Stop here when the caller asked to; else report done steps as progress."""
    if settings.should_cancel is not None and settings.should_cancel():
        raise EngineCancelled(f"cancelled before {name}")
    if settings.progress is not None:
        # Steps: loading, each pass, the breaks and the write.
        settings.progress(done / (len(spec.passes) + 3), name)


def checked_rules(left: Path, right: Path, rules: dict[str, Any]) -> Rules:
    """The rules validated against the fields both sources carry."""
    # Rules may compare the extra fields both sources carry.
    fields = source_fields(left) & source_fields(right)
    return Rules.from_normalised(validate_rules(rules, fields=fields))


@contextmanager
def open_stage(
    left: Path, right: Path, rules: dict[str, Any], out_dir: Path, settings: Settings
) -> Iterator[Stage]:
    """Validate the inputs, load both sides and yield the stage; close it all afterwards."""
    spec = checked_rules(left, right, rules)
    for name, path in (("left", left), ("right", right)):
        if not path.is_file():
            raise EngineError(f"{name} source {path} does not exist")
    if not out_dir.is_dir():
        raise EngineError(f"output directory {out_dir} does not exist")
    left_scale = amount_scale(left, "left")
    right_scale = amount_scale(right, "right")
    scale = common_scale(left_scale, right_scale, spec)
    base = settings.temp_dir if settings.temp_dir is not None else Path(tempfile.gettempdir())
    base.mkdir(parents=True, exist_ok=True)
    work_dir = Path(tempfile.mkdtemp(prefix="recon-engine-", dir=base))
    con = connect(memory_limit=settings.memory_limit, temp_dir=work_dir, threads=settings.threads)
    hold = settings.on_connection or (lambda _con: None)
    hold(con)
    try:
        _checkpoint(settings, spec, 0, "load")
        sides = (
            load_side(con, "left", left, left_scale, scale, spec),
            load_side(con, "right", right, right_scale, scale, spec),
        )
        stage = Stage(con, spec, sides, scale, settings)
        create_types(con, stage.pass_names)
        yield stage
    finally:
        hold(None)
        con.close()
        shutil.rmtree(work_dir, ignore_errors=True)


def run_reconciliation(
    left: str | Path,
    right: str | Path,
    rules: dict[str, Any],
    out_path: str | Path,
    *,
    memory_limit: str = "1GB",
    temp_dir: str | Path | None = None,
    threads: int | None = None,
    max_candidates: int = 50_000_000,
    progress: Progress | None = None,
    should_cancel: Callable[[], bool] | None = None,
    on_connection: Callable[[Any], None] | None = None,
) -> dict[str, Any]:
    """Match left against right under rules, write the results Parquet, return the summary.

    ``on_connection`` is given the DuckDB connection once it is open and None before
    it closes, so another thread can ``interrupt()`` a running statement (a cancel).
    """
    started = time.perf_counter()
    out = Path(out_path)
    settings = Settings(
        memory_limit=memory_limit,
        temp_dir=Path(temp_dir) if temp_dir is not None else None,
        threads=threads,
        max_candidates=max_candidates,
        progress=progress,
        should_cancel=should_cancel,
        on_connection=on_connection,
    )
    with open_stage(Path(left), Path(right), rules, out.parent, settings) as stage:
        queries, pass_summaries, breaks = match_all(stage)
        written = write_results(stage.con, stage.sides, queries, stage.pass_names, stage.scale, out)
        total_rows = stage.total_rows
    if progress is not None:
        progress(1.0, "done")
    return summary(written, pass_summaries, breaks, stage.scale, total_rows, started)


Queries = tuple[list[str], list[str]]


def match_all(stage: Stage) -> tuple[Queries, list[dict[str, Any]], int]:
    """Every pass, then the breaks, on the loaded stage.

    Returns per side the queries of its records that are not unmatched (the
    shape results.write_results reads), the passes' summaries and the breaks.
    """
    con, spec, sides = stage.con, stage.spec, stage.sides
    settled = None
    if worth_settling(spec):
        settled = settle_unique_keys(con, spec, sides, stage.scale)
    lead = settled.leading if settled else 0
    # With settled pairs the pools start as the records whose key repeats on a side.
    pools = sources(sides)
    if settled:
        pools = pools_where(con, pools, "repeat", SEMI_REPEATED)
    pools, complete, pass_summaries = match_passes(
        stage, range(len(spec.passes)), pools, settled=settled, complete=settled is None
    )
    records = stage.records
    stage.checkpoint(1 + len(spec.passes), "break")
    settled_breaks = None
    if settled and settled.breaks:
        settled_breaks = break_pairs_sql(records[lead:])
        if complete:  # the unique-key records can only pair among themselves
            pools = pools_where(con, pools, "break", SEMI_REPEATED)
    elif not complete and spec.break_on:
        pools = _remaining(con, pools, sides, records)
    breaks = pair_breaks(stage, pools, settled=settled_breaks)
    stage.checkpoint(2 + len(spec.passes), "write")
    suggest = [i for i, p in enumerate(spec.passes[:lead]) if p.action == "suggest"]
    left, right = (
        [record_table_sql(r, side) for r in records]
        + ([matched_pairs_sql(side, suggest)] if lead else [])
        for side in ("left", "right")
    )
    return (left, right), pass_summaries, breaks


def pair_breaks(stage: Stage, pools: list[str], *, settled: str | None = None) -> int:
    """Pair the breaks among the pools into a record table of stage.records; drop the pools."""
    stage.records.append("break_records")
    breaks = run_breaks(
        stage.con,
        stage.spec.break_on,
        pools[0],
        pools[1],
        stage.sides,
        max_candidates=stage.settings.max_candidates,
        out=stage.records[-1],
        settled=settled,
    )
    drop_pools(stage.con, pools)
    return breaks


def summary(
    sides: tuple[dict[str, Any], dict[str, Any]],
    pass_summaries: list[dict[str, Any]],
    breaks: int,
    scale: int,
    total_rows: int,
    started: float,
) -> dict[str, Any]:
    """The run's summary from both sides' summaries (results.write_results) and the passes'."""
    left, right = sides
    matched = left["by_status"]["matched"]["rows"] + right["by_status"]["matched"]["rows"]
    return {
        "left": {k: v for k, v in left.items() if k != "duplicate_keys"},
        "right": {k: v for k, v in right.items() if k != "duplicate_keys"},
        "match_rate": round(matched / total_rows, 4) if total_rows else 0.0,
        "passes": pass_summaries,
        "breaks": breaks,
        "duplicate_keys": {"left": left["duplicate_keys"], "right": right["duplicate_keys"]},
        "amount_scale": scale,
        "duration_seconds": round(time.perf_counter() - started, 3),
    }


def match_passes(
    stage: Stage,
    indices: range,
    pools: list[str],
    *,
    settled: Settled | None,
    complete: bool,
) -> tuple[list[str], bool, list[dict[str, Any]]]:
    """Run the passes of indices in order on the pools; each adds a record table to stage.records.

    ``complete`` says whether the pools hold every record not matched yet (with
    settled pairs they start as the repeated-key records only). Returns the
    pools after the passes, whether they are complete, and the passes' summaries.
    """
    con, spec, sides = stage.con, stage.spec, stage.sides
    lead = settled.leading if settled else 0
    records = stage.records
    summaries = []
    for i in indices:
        p = spec.passes[i]
        stage.checkpoint(1 + i, p.name)
        if not complete and i >= lead:
            pools = _remaining(con, pools, sides, records)
            complete = True
        records.append(f"pass_records_{i}")
        if p.cardinality == "one_to_one":
            result = run_pair_pass(
                con,
                p,
                pools[0],
                pools[1],
                scale=stage.scale,
                max_candidates=stage.settings.max_candidates,
                threads=stage.settings.threads,
                out=records[-1],
                settled=settled.counts[i] if settled and i < lead else None,
            )
        else:
            result = run_group_pass(
                con,
                p,
                pools[0],
                pools[1],
                scale=stage.scale,
                max_candidates=stage.settings.max_candidates,
                out=records[-1],
            )
        summaries.append(pass_summary(p.name, p.action, p.cardinality, result, stage.total_rows))
        if result.matches:
            pools = _shrink(con, pools, records[-1], i)
    return pools, complete, summaries


def pass_summary(
    name: str, action: str, cardinality: str, result: PassResult, total_rows: int
) -> dict[str, Any]:
    rows = result.left_rows + result.right_rows
    return {
        "name": name,
        "action": action,
        "cardinality": cardinality,
        "candidates": result.candidates,
        "estimate": result.estimate,
        "matches": result.matches,
        "left_rows": result.left_rows,
        "right_rows": result.right_rows,
        "match_rate": round(rows / total_rows, 4) if total_rows else 0.0,
    }


def sources(sides: tuple[Side, Side]) -> list[str]:
    return [sides[0].table, sides[1].table]


def pools_where(con: Any, pools: Sequence[str], tag: str, condition: str) -> list[str]:
    """New pools holding the records of the given ones that meet condition (alias p)."""
    out = []
    for side, pool in zip(("left", "right"), pools, strict=True):
        table = f"{side[0]}_pool_{tag}"
        con.execute(f"CREATE TEMP TABLE {table} AS SELECT p.* FROM {pool} p {condition}")  # noqa: S608
        out.append(table)
    drop_pools(con, pools)
    return out


def _remaining(
    con: Any, pools: list[str], sides: tuple[Side, Side], records: list[str]
) -> list[str]:
    """Pools of every record that neither a settled pair nor a record table matched."""
    drop_pools(con, pools)
    out = []
    for side, column in (("left", "lrow"), ("right", "rrow")):
        taken = [f"SELECT {column} AS row FROM {PAIRS} WHERE pidx IS NOT NULL"]  # noqa: S608
        taken += [f"SELECT row FROM {r} WHERE side = '{side}'" for r in records]  # noqa: S608
        source = sides[0].table if side == "left" else sides[1].table
        table = f"{side[0]}_pool_rest"
        con.execute(
            f"""CREATE TEMP TABLE {table} AS SELECT p.* FROM {source} p
                ANTI JOIN ({" UNION ALL ".join(taken)}) t ON p.row = t.row"""  # noqa: S608
        )
        out.append(table)
    return out


def _shrink(con: Any, pools: list[str], records: str, index: int) -> list[str]:
    """New pools without the records this pass matched."""
    out = []
    for side, pool in zip(("left", "right"), pools, strict=True):
        table = f"{side[0]}_pool_{index}"
        con.execute(
            f"""CREATE TEMP TABLE {table} AS SELECT p.* FROM {pool} p
                ANTI JOIN (SELECT "row" FROM {records} WHERE side = '{side}') a
                ON p.row = a.row"""  # noqa: S608
        )
        out.append(table)
    drop_pools(con, pools)
    return out


def drop_pools(con: Any, pools: Sequence[str]) -> None:
    for pool in pools:
        if "_pool_" in pool:  # the source tables stay: the results are built from them
            con.execute(f"DROP TABLE {pool}")
