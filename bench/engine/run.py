"""Benchmark recon's engine against datacompy (Polars, pandas), a bare join and its I/O floor.

    .venv/bin/python bench/engine/run.py --rows 100000 1000000 [--seed 7]
        [--skip-datacompy] [--skip-join] [--skip-floor] [--memory-limit 1GB] [--repeat 3]

    RECON_ENGINE_MEMORY_LIMIT=4GB .venv/bin/python bench/engine/run.py --rows 10000000 \
        --skip-datacompy --skip-join

Each tool runs in a fresh subprocess (``--tool NAME``) that times its own
work (imports excluded, CSV reading included) and reports its peak RSS
(``ru_maxrss`` of that process), so the figures are per tool.

``io_floor`` is recon without the matching: the same CSV -> canonical Parquet
convert, then reading both files and writing a results file of the engine's
columns with every record unmatched. No engine with recon's input and output
contract can be faster on this machine, so ``recon - io_floor`` is what the
matching itself costs.
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

from data import TWO_PASS_RULES as RULES  # noqa: E402 - bench-local module
from data import generate  # noqa: E402

ABS_TOL, REL_TOL = 0.01, 0.001

TOOLS = ("recon", "io_floor", "duckdb_join", "datacompy_polars", "datacompy_pandas")


CSV_COLUMNS = (
    "{'id': 'VARCHAR', 'amount': 'DECIMAL(38, 2)', 'date': 'DATE', "
    "'currency': 'VARCHAR', 'description': 'VARCHAR'}"
)


def _canonical(csv: Path, out: Path, memory_limit: str) -> None:
    """CSV -> canonical source Parquet with a small DuckDB COPY (stand-in for the parser).

    Typed columns spare a VARCHAR pass; the row numbering is a window over the
    whole file, which runs on one thread, so the two files convert side by side.
    """
    import duckdb

    con = duckdb.connect()
    con.execute(f"SET memory_limit = '{memory_limit}'")
    con.execute(
        f"""COPY (SELECT row_number() OVER () AS "row", id AS "key", amount, "date",
                  currency, description
                  FROM read_csv('{csv}', columns = {CSV_COLUMNS}, header = true))
            TO '{out}' (FORMAT parquet)"""  # noqa: S608
    )
    con.close()


def _convert_both(left: Path, right: Path, work: Path, memory_limit: str, ingest: str) -> None:
    """Both CSVs -> work/left.parquet, work/right.parquet (canonical source files)."""
    if ingest == "parser":
        from recon.sources.parsing import ingest_file

        ingest_file(left, work / "left.parquet", filename=left.name)
        ingest_file(right, work / "right.parquet", filename=right.name)
        return
    with ThreadPoolExecutor(2) as pool:
        jobs = [
            pool.submit(_canonical, csv, work / f"{name}.parquet", memory_limit)
            for csv, name in ((left, "left"), (right, "right"))
        ]
        for job in jobs:
            job.result()


def tool_io_floor(
    left: Path, right: Path, work: Path, memory_limit: str, ingest: str
) -> dict[str, Any]:
    """recon's input/output without the matching: what any engine with its contract pays.

    The same CSV -> canonical Parquet convert as the recon tool, then one
    statement that reads both canonical files and writes a results file of the
    engine's columns and writer options with every record unmatched (already in
    side, row order, so nothing is sorted). Its NULL columns cost the writer
    almost nothing, so this is a lower bound, not an estimate.
    """
    import duckdb

    from recon.engine.results import STATUSES

    start = time.perf_counter()
    _convert_both(left, right, work, memory_limit, ingest)
    converted = time.perf_counter()
    con = duckdb.connect()
    con.execute(f"SET memory_limit = '{memory_limit}'")
    statuses = ", ".join(f"'{s}'" for s in STATUSES)
    con.execute(f"CREATE TYPE recon_status AS ENUM ({statuses})")
    con.execute("CREATE TYPE recon_side AS ENUM ('left', 'right')")
    passes = ", ".join(f"'{p['name']}'" for p in [*RULES["passes"], {"name": "break"}])
    con.execute(f"CREATE TYPE recon_pass AS ENUM ({passes})")

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
    return {
        "seconds": time.perf_counter() - start,
        "convert_seconds": converted - start,
    }


def tool_recon(
    left: Path, right: Path, work: Path, memory_limit: str, ingest: str
) -> dict[str, Any]:
    from recon.engine import run_reconciliation

    start = time.perf_counter()
    _convert_both(left, right, work, memory_limit, ingest)
    converted = time.perf_counter()
    summary = run_reconciliation(
        work / "left.parquet",
        work / "right.parquet",
        RULES,
        work / "results.parquet",
        memory_limit=memory_limit,
        temp_dir=work,
    )
    return {
        "seconds": time.perf_counter() - start,
        "convert_seconds": converted - start,
        "matched": summary["left"]["by_status"]["matched"]["rows"],
        "breaks": summary["breaks"],
    }


def tool_duckdb_join(left: Path, right: Path, work: Path, memory_limit: str) -> dict[str, Any]:
    import duckdb

    start = time.perf_counter()
    con = duckdb.connect()
    con.execute(f"SET memory_limit = '{memory_limit}'")
    con.execute(
        f"""COPY (SELECT l.id AS left_id, r.id AS right_id, l.amount - r.amount AS diff
                  FROM read_csv('{left}') l FULL OUTER JOIN read_csv('{right}') r
                  ON l.id = r.id)
            TO '{work / "join.parquet"}' (FORMAT parquet)"""  # noqa: S608
    )
    row = con.execute(f"SELECT count(*) FROM '{work / 'join.parquet'}'").fetchone()  # noqa: S608
    return {"seconds": time.perf_counter() - start, "rows_out": row[0] if row else 0}


def tool_datacompy(backend: str, left: Path, right: Path) -> dict[str, Any]:
    import datacompy

    start = time.perf_counter()
    if backend == "polars":
        import polars as pl

        df1, df2 = pl.read_csv(left), pl.read_csv(right)
        cmp: Any = datacompy.PolarsCompare(
            df1, df2, join_columns="id", abs_tol=ABS_TOL, rel_tol=REL_TOL
        )
    else:
        import pandas as pd

        df1, df2 = pd.read_csv(left), pd.read_csv(right)
        cmp = datacompy.PandasCompare(df1, df2, join_columns="id", abs_tol=ABS_TOL, rel_tol=REL_TOL)
    matching = cmp.count_matching_rows()
    return {"seconds": time.perf_counter() - start, "matching_rows": int(matching)}


def child(args: argparse.Namespace) -> None:
    left, right, work = Path(args.left), Path(args.right), Path(args.work)
    if args.tool == "recon":
        result = tool_recon(left, right, work, args.memory_limit, args.ingest)
    elif args.tool == "io_floor":
        result = tool_io_floor(left, right, work, args.memory_limit, args.ingest)
    elif args.tool == "duckdb_join":
        result = tool_duckdb_join(left, right, work, args.memory_limit)
    else:
        result = tool_datacompy(args.tool.split("_", 1)[1], left, right)
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(result))


def measure(
    tool: str, left: Path, right: Path, work: Path, memory_limit: str, ingest: str
) -> dict[str, Any]:
    command = [sys.executable, __file__, "--tool", tool, "--left", str(left)]
    command += ["--right", str(right), "--work", str(work)]
    command += ["--memory-limit", memory_limit, "--ingest", ingest]
    out = subprocess.run(command, check=True, capture_output=True, text=True)
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--seed", type=int, default=7)
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
    parser.add_argument(
        "--ingest",
        choices=("duckdb", "parser"),
        default="duckdb",
        help="CSV -> canonical Parquet: a DuckDB COPY, or recon's sources parser (ingest_file)",
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
            left, right = generate(work, rows, args.seed, "two_pass")
            runs: dict[str, list[dict[str, Any]]] = {t: [] for t in tools}
            for _ in range(args.repeat):  # interleaved, so a busy spell hits every tool
                for t in tools:
                    runs[t].append(measure(t, left, right, work, args.memory_limit, args.ingest))
            results = {t: min(r, key=lambda x: x["seconds"]) for t, r in runs.items()}
        print(
            f"\n{rows:,} x {rows:,} rows (seed {args.seed}, memory limit {args.memory_limit}, "
            f"ingest {args.ingest}, best of {args.repeat})"
        )
        print(f"{'tool':<18}{'wall s':>9}{'peak RSS MB':>13}{'rows/s':>13}{'recon is':>14}")
        base = results["recon"]["seconds"]
        for tool, r in results.items():
            ratio = "" if tool == "recon" else f"{r['seconds'] / base:.2f}x faster"
            if tool in ("duckdb_join", "io_floor"):
                ratio = f"{base / r['seconds']:.2f}x slower"
            print(
                f"{tool:<18}{r['seconds']:>9.2f}{r['peak_rss_mb']:>13.0f}"
                f"{2 * rows / r['seconds']:>13,.0f}{ratio:>14}"
            )
        recon = results["recon"]
        print(
            f"recon: CSV->Parquet {recon['convert_seconds']:.2f} s, engine "
            f"{recon['seconds'] - recon['convert_seconds']:.2f} s; "
            f"{recon['matched']:,} left records matched, {recon['breaks']:,} breaks"
        )
        if "io_floor" in results:
            floor = results["io_floor"]
            print(
                f"io_floor: CSV->Parquet {floor['convert_seconds']:.2f} s, read + write "
                f"{floor['seconds'] - floor['convert_seconds']:.2f} s; recon's matching costs "
                f"{recon['seconds'] - floor['seconds']:.2f} s above it"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
