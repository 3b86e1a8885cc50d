"""run_reconciliation: rules and two canonical Parquet files in, results and a summary out."""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
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
    break_pairs_sql,
    matched_pairs_sql,
    settle_unique_keys,
    worth_settling,
)

Progress = Callable[[float, str], None]
SEMI_REPEATED = f"SEMI JOIN {REPEATED} x ON p.k = x.k"


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
    left_path, right_path, out = Path(left), Path(right), Path(out_path)
    # Rules may compare the extra fields both sources carry.
    fields = source_fields(left_path) & source_fields(right_path)
    spec = Rules.from_normalised(validate_rules(rules, fields=fields))
    for name, path in (("left", left_path), ("right", right_path)):
        if not path.is_file():
            raise EngineError(f"{name} source {path} does not exist")
    if not out.parent.is_dir():
        raise EngineError(f"output directory {out.parent} does not exist")
    left_scale = amount_scale(left_path, "left")
    right_scale = amount_scale(right_path, "right")
    scale = common_scale(left_scale, right_scale, spec)
    steps = len(spec.passes) + 3
    report = progress or (lambda _f, _n: None)

    def checkpoint(done: int, name: str) -> None:
        if should_cancel is not None and should_cancel():
            raise EngineCancelled(f"cancelled before {name}")
        report(done / steps, name)

    base = Path(temp_dir) if temp_dir is not None else Path(tempfile.gettempdir())
    base.mkdir(parents=True, exist_ok=True)
    work_dir = Path(tempfile.mkdtemp(prefix="recon-engine-", dir=base))
    con = connect(memory_limit=memory_limit, temp_dir=work_dir, threads=threads)
    hold = on_connection or (lambda _con: None)
    hold(con)
    try:
        checkpoint(0, "load")
        sides = (
            load_side(con, "left", left_path, left_scale, scale, spec),
            load_side(con, "right", right_path, right_scale, scale, spec),
        )
        pass_names = [p.name for p in spec.passes]
        create_types(con, pass_names)
        settled = settle_unique_keys(con, spec, sides, scale) if worth_settling(spec) else None
        lead = settled.leading if settled else 0
        # With settled pairs the pools start as the records whose key repeats on a side.
        pools = _sources(sides)
        if settled:
            pools = _pools(con, pools, "repeat", SEMI_REPEATED)
        complete = settled is None  # whether the pools hold every record not matched yet
        records: list[str] = []
        total_rows = sides[0].rows + sides[1].rows
        pass_summaries = []
        for i, p in enumerate(spec.passes):
            checkpoint(1 + i, p.name)
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
                    scale=scale,
                    max_candidates=max_candidates,
                    threads=threads,
                    out=records[-1],
                    settled=settled.counts[i] if settled and i < lead else None,
                )
            else:
                result = run_group_pass(
                    con,
                    p,
                    pools[0],
                    pools[1],
                    scale=scale,
                    max_candidates=max_candidates,
                    out=records[-1],
                )
            pass_summaries.append(
                _pass_summary(p.name, p.action, p.cardinality, result, total_rows)
            )
            if result.matches:
                pools = _shrink(con, pools, records[-1], i)
        checkpoint(1 + len(spec.passes), "break")
        settled_breaks = None
        if settled and settled.breaks:
            settled_breaks = break_pairs_sql(records[lead:])
            if complete:  # the unique-key records can only pair among themselves
                pools = _pools(con, pools, "break", SEMI_REPEATED)
        elif not complete and spec.break_on:
            pools = _remaining(con, pools, sides, records)
        records.append("break_records")
        breaks = run_breaks(
            con,
            spec.break_on,
            pools[0],
            pools[1],
            sides,
            max_candidates=max_candidates,
            out=records[-1],
            settled=settled_breaks,
        )
        _drop_pools(con, pools)
        checkpoint(2 + len(spec.passes), "write")
        suggest = [i for i, p in enumerate(spec.passes[:lead]) if p.action == "suggest"]
        queries = tuple(
            [record_table_sql(r, side) for r in records]
            + ([matched_pairs_sql(side, suggest)] if lead else [])
            for side in ("left", "right")
        )
        left_summary, right_summary = write_results(
            con, sides, (queries[0], queries[1]), pass_names, scale, out
        )
    finally:
        hold(None)
        con.close()
        shutil.rmtree(work_dir, ignore_errors=True)
    report(1.0, "done")
    matched = (
        left_summary["by_status"]["matched"]["rows"] + right_summary["by_status"]["matched"]["rows"]
    )
    return {
        "left": {k: v for k, v in left_summary.items() if k != "duplicate_keys"},
        "right": {k: v for k, v in right_summary.items() if k != "duplicate_keys"},
        "match_rate": round(matched / total_rows, 4) if total_rows else 0.0,
        "passes": pass_summaries,
        "breaks": breaks,
        "duplicate_keys": {
            "left": left_summary["duplicate_keys"],
            "right": right_summary["duplicate_keys"],
        },
        "amount_scale": scale,
        "duration_seconds": round(time.perf_counter() - started, 3),
    }


def _pass_summary(
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


def _sources(sides: tuple[Side, Side]) -> list[str]:
    return [sides[0].table, sides[1].table]


def _pools(con: Any, pools: Sequence[str], tag: str, condition: str) -> list[str]:
    """New pools holding the records of the given ones that meet condition (alias p)."""
    out = []
    for side, pool in zip(("left", "right"), pools, strict=True):
        table = f"{side[0]}_pool_{tag}"
        con.execute(f"CREATE TEMP TABLE {table} AS SELECT p.* FROM {pool} p {condition}")  # noqa: S608
        out.append(table)
    _drop_pools(con, pools)
    return out


def _remaining(
    con: Any, pools: list[str], sides: tuple[Side, Side], records: list[str]
) -> list[str]:
    """Pools of every record that neither a settled pair nor a record table matched."""
    _drop_pools(con, pools)
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
    _drop_pools(con, pools)
    return out


def _drop_pools(con: Any, pools: Sequence[str]) -> None:
    for pool in pools:
        if "_pool_" in pool:  # the source tables stay: the results are built from them
            con.execute(f"DROP TABLE {pool}")
