"""Benchmark recon against datacompy (Polars, pandas), a bare DuckDB join and its I/O floor.

    .venv/bin/python bench/engine/run.py --rows 100000 1000000 [--seed 7]
        [--recipe four_pass|two_pass] [--ingest cli|duckdb] [--skip-datacompy]
        [--skip-join] [--skip-floor] [--memory-limit 1GB] [--repeat 3]

    RECON_ENGINE_MEMORY_LIMIT=4GB .venv/bin/python bench/engine/run.py --rows 10000000 \
        --skip-datacompy --skip-join

Each tool runs in a fresh subprocess (``--tool NAME``) that times its own
work (imports excluded, CSV reading included) and reports its peak RSS
(``ru_maxrss`` of that process), so the figures are per tool.

``recon`` is, by default (``--ingest cli``), what a user runs: ``recon
reconcile left.csv right.csv --rules R --out DIR``, in process, the two CSV
files parsed by recon's own sources parser. ``--ingest duckdb`` replaces the
parser by a typed DuckDB COPY (the engine alone, as the previous rounds
measured it).

``io_floor`` is recon's contract without the parser's checks and without the
matching: a typed DuckDB COPY of both CSVs to canonical Parquet, then reading
both files and writing a results file of the engine's columns with every
record unmatched. No engine with recon's input and output contract can be
faster on this machine, so ``recon - io_floor`` is what the checks and the
matching cost.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from data import RECIPES, generate  # noqa: E402 - bench-local module

TOOLS = ("recon", "io_floor", "duckdb_join", "datacompy_polars", "datacompy_pandas")


CSV_COLUMNS = (
    "{'id': 'VARCHAR', 'amount': 'DECIMAL(38, 2)', 'date': 'DATE', "
    "'currency': 'VARCHAR', 'description': 'VARCHAR'}"
)


def typed_read(path: Path) -> str:
    """The CSV file read with its types (the join, io_floor and the duckdb ingest)."""
    return f"read_csv('{path}', columns = {CSV_COLUMNS}, header = true)"


def _canonical(csv: Path, out: Path, memory_limit: str) -> None:
    """CSV -> canonical source Parquet with a small typed DuckDB COPY (no parser checks)."""
    import duckdb

    con = duckdb.connect()
    con.execute(f"SET memory_limit = '{memory_limit}'")
    con.execute(
        f"""COPY (SELECT row_number() OVER () AS "row", id AS "key", amount, "date",
                  currency, description
                  FROM {typed_read(csv)})
            TO '{out}' (FORMAT parquet)"""  # noqa: S608
    )
    con.close()


def _convert_both(left: Path, right: Path, work: Path, memory_limit: str) -> None:
    """Both CSVs -> work/left.parquet, work/right.parquet by DuckDB, side by side."""
    with ThreadPoolExecutor(2) as pool:
        jobs = [
            pool.submit(_canonical, csv, work / f"{name}.parquet", memory_limit)
            for csv, name in ((left, "left"), (right, "right"))
        ]
        for job in jobs:
            job.result()


def tool_io_floor(
    left: Path, right: Path, work: Path, memory_limit: str, recipe: str
) -> dict[str, Any]:
    """recon's input/output without checks or matching: what any engine with its contract pays.

    A typed DuckDB convert of both CSVs to canonical Parquet, then one
    statement that reads both canonical files and writes a results file of the
    engine's columns and writer options with every record unmatched (already in
    side, row order, so nothing is sorted). Its NULL columns cost the writer
    almost nothing, so this is a lower bound, not an estimate.
    """
    import duckdb

    from recon.engine.results import STATUSES

    start = time.perf_counter()
    _convert_both(left, right, work, memory_limit)
    converted = time.perf_counter()
    con = duckdb.connect()
    con.execute(f"SET memory_limit = '{memory_limit}'")
    statuses = ", ".join(f"'{s}'" for s in STATUSES)
    con.execute(f"CREATE TYPE recon_status AS ENUM ({statuses})")
    con.execute("CREATE TYPE recon_side AS ENUM ('left', 'right')")
    names = [p["name"] for p in RECIPES[recipe]["rules"]["passes"]] + ["break"]
    con.execute(f"CREATE TYPE recon_pass AS ENUM ({', '.join(repr(n) for n in names)})")

    def side(name: str) -> str:
        return f"""SELECT CAST('{name}' AS recon_side) AS side, "row",
                   CAST('unmatched' AS recon_status) AS status, CAST(NULL AS recon_pass) AS pass,
                   CAST(NULL AS BIGINT) AS match_id, CAST(NULL AS DOUBLE) AS confidence,
                   CAST(NULL AS DECIMAL(38, 2)) AS amount_diff,
                   CAST(NULL AS INTEGER) AS date_diff_days, "key" IS NULL AS duplicate_key,
                   CAST(NULL AS VARCHAR) AS diff_fields
                   FROM read_parquet('{work / f"{name}.parquet"}')"""  # noqa: S608

    con.execute(
        f"""COPY ({side("left")} UNION ALL {side("right")})
            TO '{work / "floor.parquet"}' (FORMAT parquet, COMPRESSION zstd, PARQUET_VERSION V2)"""
    )
    return {"seconds": time.perf_counter() - start, "convert_seconds": converted - start}


def tool_recon(
    left: Path, right: Path, work: Path, memory_limit: str, recipe: str, ingest: str
) -> dict[str, Any]:
    """recon from the two CSVs to results.parquet: ``recon reconcile`` (or typed COPY + engine)."""
    import contextlib
    import io

    from recon.engine import run_reconciliation
    from recon.engine.cli import main

    rules = RECIPES[recipe]["rules"]
    out = work / "out"
    start = time.perf_counter()
    if ingest == "cli":
        rules_path = work / "rules.json"
        rules_path.write_text(json.dumps(rules))
        command = ["reconcile", str(left), str(right), "--rules", str(rules_path)]
        command += ["--out", str(out), "--memory-limit", memory_limit]
        with contextlib.redirect_stdout(io.StringIO()):
            if main(command) != 0:
                raise SystemExit("recon reconcile failed")
        summary = json.loads((out / "summary.json").read_text())
    else:
        _convert_both(left, right, work, memory_limit)
        out.mkdir(exist_ok=True)
        summary = run_reconciliation(
            work / "left.parquet",
            work / "right.parquet",
            rules,
            out / "results.parquet",
            memory_limit=memory_limit,
            temp_dir=work,
        )
    seconds = time.perf_counter() - start
    return {
        "seconds": seconds,
        "convert_seconds": seconds - summary["duration_seconds"],
        "matched": summary["left"]["by_status"]["matched"]["rows"],
        "suggested": summary["left"]["by_status"]["suggested"]["rows"],
        "breaks": summary["breaks"],
    }


def tool_duckdb_join(left: Path, right: Path, work: Path, memory_limit: str) -> dict[str, Any]:
    """A bare full outer join of the two CSVs on the key (typed read), written to Parquet."""
    import duckdb

    start = time.perf_counter()
    con = duckdb.connect()
    con.execute(f"SET memory_limit = '{memory_limit}'")
    con.execute(
        f"""COPY (SELECT l.id AS left_id, r.id AS right_id, l.amount - r.amount AS diff
                  FROM {typed_read(left)} l FULL OUTER JOIN {typed_read(right)} r
                  ON l.id = r.id)
            TO '{work / "join.parquet"}' (FORMAT parquet)"""  # noqa: S608
    )
    row = con.execute(f"SELECT count(*) FROM '{work / 'join.parquet'}'").fetchone()  # noqa: S608
    return {"seconds": time.perf_counter() - start, "rows_out": row[0] if row else 0}


def tool_datacompy(backend: str, left: Path, right: Path, recipe: str) -> dict[str, Any]:
    """datacompy's key compare with the recipe's amount tolerances, typed CSV read included."""
    import datacompy

    tolerance = {"abs_tol": RECIPES[recipe]["abs_tol"], "rel_tol": RECIPES[recipe]["rel_tol"]}
    start = time.perf_counter()
    if backend == "polars":
        import polars as pl

        schema = {"id": pl.Utf8, "amount": pl.Float64, "date": pl.Date}
        df1 = pl.read_csv(left, schema_overrides=schema)
        df2 = pl.read_csv(right, schema_overrides=schema)
        cmp: Any = datacompy.PolarsCompare(df1, df2, join_columns="id", **tolerance)
    else:
        import pandas as pd

        df1 = pd.read_csv(left, dtype={"id": str}, parse_dates=["date"])
        df2 = pd.read_csv(right, dtype={"id": str}, parse_dates=["date"])
        cmp = datacompy.PandasCompare(df1, df2, join_columns="id", **tolerance)
    matching = cmp.count_matching_rows()
    return {"seconds": time.perf_counter() - start, "matching_rows": int(matching)}


def child(args: argparse.Namespace) -> None:
    left, right, work = Path(args.left), Path(args.right), Path(args.work)
    if args.tool == "recon":
        result = tool_recon(left, right, work, args.memory_limit, args.recipe, args.ingest)
    elif args.tool == "io_floor":
        result = tool_io_floor(left, right, work, args.memory_limit, args.recipe)
    elif args.tool == "duckdb_join":
        result = tool_duckdb_join(left, right, work, args.memory_limit)
    else:
        result = tool_datacompy(args.tool.split("_", 1)[1], left, right, args.recipe)
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(result))


def measure(tool: str, paths: tuple[Path, Path, Path], args: argparse.Namespace) -> dict[str, Any]:
    left, right, work = paths
    command = [sys.executable, __file__, "--tool", tool, "--left", str(left)]
    command += ["--right", str(right), "--work", str(work), "--recipe", args.recipe]
    command += ["--memory-limit", args.memory_limit, "--ingest", args.ingest]
    out = subprocess.run(command, check=True, capture_output=True, text=True)
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


# Issue 16's targets, as recon's speed relative to each tool (its seconds over recon's).
TARGETS = {"datacompy_polars": 1.0, "datacompy_pandas": 3.0, "duckdb_join": 0.25}
RSS_TARGET_MB = 1536


def _targets(results: dict[str, dict[str, Any]]) -> str:
    base = results["recon"]["seconds"]
    lines = []
    for tool, wanted in TARGETS.items():
        if tool in results:
            speed = results[tool]["seconds"] / base
            verdict = "met" if speed >= wanted else "NOT met"
            lines.append(f"{tool} >= {wanted:.2f}x: {speed:.2f}x {verdict}")
    rss = results["recon"]["peak_rss_mb"]
    lines.append(
        f"peak RSS < {RSS_TARGET_MB} MB: {rss:.0f} {'met' if rss < RSS_TARGET_MB else 'NOT met'}"
    )
    return "targets: " + "; ".join(lines)


def report(rows: int, results: dict[str, dict[str, Any]], args: argparse.Namespace) -> None:
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(
        f"\n{rows:,} entities a side, recipe {args.recipe} (seed {args.seed}, memory limit "
        f"{args.memory_limit}, ingest {args.ingest}, best of {args.repeat}, "
        f"load average {load} on {os.cpu_count()} cores)"
    )
    # recon's speed: the tool's seconds over recon's (above 1.0x recon is faster).
    print(f"{'tool':<18}{'wall s':>9}{'peak RSS MB':>13}{'recon speed':>14}")
    base = results["recon"]["seconds"]
    for tool, r in results.items():
        speed = "" if tool == "recon" else f"{r['seconds'] / base:.2f}x"
        print(f"{tool:<18}{r['seconds']:>9.2f}{r['peak_rss_mb']:>13.0f}{speed:>14}")
    recon = results["recon"]
    print(
        f"recon: parse {recon['convert_seconds']:.2f} s, engine "
        f"{recon['seconds'] - recon['convert_seconds']:.2f} s; left records: "
        f"{recon['matched']:,} matched, {recon['suggested']:,} suggested; "
        f"{recon['breaks']:,} breaks"
    )
    if "io_floor" in results:
        floor = results["io_floor"]
        print(
            f"io_floor: CSV->Parquet {floor['convert_seconds']:.2f} s, read + write "
            f"{floor['seconds'] - floor['convert_seconds']:.2f} s; recon costs "
            f"{recon['seconds'] - floor['seconds']:.2f} s above it"
        )
    print(_targets(results))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--recipe",
        choices=tuple(RECIPES),
        default="four_pass",
        help="four_pass (default: exact, tolerant, amount+date+description suggestions, "
        "one-to-many, breaks) or two_pass (exact, tolerant, breaks); see data.py",
    )
    parser.add_argument(
        "--ingest",
        choices=("cli", "duckdb"),
        default="cli",
        help="cli (default): recon reconcile on the CSVs, recon's own parser; "
        "duckdb: a typed DuckDB COPY to canonical Parquet, then the engine",
    )
    parser.add_argument("--skip-datacompy", action="store_true")
    parser.add_argument(
        "--skip-join", action="store_true", help="skip the bare DuckDB join (e.g. at 10M rows)"
    )
    parser.add_argument(
        "--skip-floor", action="store_true", help="skip io_floor (recon's input/output alone)"
    )
    parser.add_argument(
        "--memory-limit",
        default=os.environ.get("RECON_ENGINE_MEMORY_LIMIT", "1GB"),
        help="DuckDB memory limit of recon's engine and the join (RECON_ENGINE_MEMORY_LIMIT)",
    )
    parser.add_argument(
        "--repeat", type=int, default=1, help="runs per tool; the fastest counts (shared machines)"
    )
    parser.add_argument("--tool", choices=TOOLS, help=argparse.SUPPRESS)
    parser.add_argument("--left", help=argparse.SUPPRESS)
    parser.add_argument("--right", help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.tool:
        child(args)
        return 0
    tools = [t for t in TOOLS if not (args.skip_datacompy and t.startswith("datacompy"))]
    if args.skip_join:
        tools.remove("duckdb_join")
    if args.skip_floor:
        tools.remove("io_floor")
    for rows in args.rows:
        with tempfile.TemporaryDirectory(prefix="recon-bench-") as tmp:
            work = Path(tmp)
            left, right = generate(work, rows, args.seed, args.recipe)
            runs: dict[str, list[dict[str, Any]]] = {t: [] for t in tools}
            for _ in range(args.repeat):  # interleaved, so a busy spell hits every tool
                for t in tools:
                    runs[t].append(measure(t, (left, right, work), args))
            results = {t: min(r, key=lambda x: x["seconds"]) for t, r in runs.items()}
        report(rows, results, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
