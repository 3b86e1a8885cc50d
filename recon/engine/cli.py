"""``recon reconcile LEFT RIGHT --rules R.json --out DIR``: the engine from the command line.

LEFT and RIGHT are canonical Parquet files, or CSV/XLSX exports or bank
statement files (MT940, CAMT.05x, BAI2, OFX) read through the sources parser
with ``--left-options/--right-options`` (a JSON object of parser options; a
``mapping`` key in it is passed as the column mapping).
Writes ``results.parquet`` and ``summary.json`` (and with ``--csv`` one CSV
per status, the records joined with their canonical fields) under DIR and
prints a summary table. Exit status 0 on success, 2 on bad input.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from recon import heap
from recon.duckdb_conn import connect
from recon.engine.results import STATUSES
from recon.errors import APIError

CANONICAL = ("key", "amount", "date", "currency", "description")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="recon", description="recon command line")
    sub = parser.add_subparsers(dest="command", required=True)
    rec = sub.add_parser(
        "reconcile",
        help="match two files under rules",
        description=(
            "Match LEFT against RIGHT under the rules; write results.parquet and summary.json "
            "under OUT and print a summary. Exit status 0 on success, 2 on bad input."
        ),
        epilog=(
            "example: recon reconcile examples/bank_ledger/bank.csv "
            "examples/bank_ledger/ledger.csv --rules examples/bank_ledger/rules.json "
            "--out /tmp/out --csv"
        ),
    )
    rec.add_argument(
        "left",
        type=Path,
        help="CSV/XLSX export or bank statement (MT940, CAMT.052/.053/.054, BAI2, OFX/QFX), "
        "read through the sources parser, or a canonical Parquet file",
    )
    rec.add_argument("right", type=Path, help="the other side, as LEFT")
    rec.add_argument("--rules", type=Path, required=True, help="rules JSON file")
    rec.add_argument(
        "--out", type=Path, required=True, help="output directory (created when missing)"
    )
    rec.add_argument("--csv", action="store_true", help="also write one CSV per status")
    rec.add_argument(
        "--left-options",
        default="{}",
        help='parser options for LEFT as a JSON object, e.g. \'{"delimiter": ";", '
        '"mapping": {"key": "Ref"}}\' ("mapping" names the columns)',
    )
    rec.add_argument("--right-options", default="{}", help="parser options for RIGHT, as above")
    rec.add_argument(
        "--memory-limit",
        default="1GB",
        help="DuckDB memory limit; a bigger job spills to disk (default 1GB)",
    )
    rec.add_argument(
        "--threads", type=int, default=None, help="DuckDB threads (default: one per core)"
    )
    rec.add_argument(
        "--partitions",
        type=int,
        default=1,
        help="split both sides by key hash into N parts, run the leading key passes of each "
        "part in its own process and the rest on what they leave; the results equal the "
        "single run's (default 1: one run)",
    )
    rec.add_argument(
        "--processes",
        type=int,
        default=None,
        help="processes for --partitions (default: one per part, at most one per core)",
    )
    return parser


class InputError(Exception):
    """Bad command-line input; the message is shown as is."""


def _json_arg(text: str, name: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{name} is not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise InputError(f"{name} must be a JSON object")
    return value


def _canonical(path: Path, options: dict[str, Any], work: Path, side: str) -> Path:
    """The canonical Parquet of an input file, ingesting CSV/XLSX through the sources parser."""
    if not path.is_file():
        raise InputError(f"{side} file {path} does not exist")
    if path.suffix.lower() == ".parquet":
        return path
    from recon.sources.parsing import ingest_file  # lazy: only files to parse need it

    options = dict(options)
    mapping = options.pop("mapping", None)
    out = work / f"{side}.parquet"
    ingest_file(path, out, filename=path.name, mapping=mapping, options=options or None)
    return out


def _canonical_both(
    left: tuple[Path, dict[str, Any]], right: tuple[Path, dict[str, Any]], work: Path
) -> tuple[Path, Path]:
    """Both sides' canonical Parquet, parsed at once when both need parsing.

    Each parse is mostly DuckDB work that leaves the GIL, and parts of it run
    on one thread, so two side by side use the cores better than one after
    the other. A bad left file is reported first, as when they ran in turn.
    """
    if left[0].suffix.lower() == ".parquet" or right[0].suffix.lower() == ".parquet":
        return _canonical(*left, work, "left"), _canonical(*right, work, "right")
    with ThreadPoolExecutor(2) as pool:
        jobs = [
            pool.submit(_canonical, path, options, work, side)
            for (path, options), side in ((left, "left"), (right, "right"))
        ]
        return jobs[0].result(), jobs[1].result()


def _write_csvs(results: Path, left: Path, right: Path, out_dir: Path) -> None:
    con = connect()
    fields = ", ".join(f's."{c}"' for c in CANONICAL)
    for status in STATUSES:
        target = out_dir / f"{status}.csv"
        con.execute(
            f"""COPY (SELECT r.*, {fields} FROM read_parquet(?) r
                JOIN (SELECT 'left' AS side, * FROM read_parquet(?)
                      UNION ALL BY NAME SELECT 'right' AS side, * FROM read_parquet(?)) s
                ON r.side = s.side AND r.row = s.row
                WHERE r.status = ? ORDER BY r.side, r.row)
                TO '{str(target).replace("'", "''")}' (HEADER, DELIMITER ',')""",  # noqa: S608
            [str(results), str(left), str(right), status],
        )
    con.close()


def _table(summary: dict[str, Any]) -> str:
    lines = [f"{'side':<7}{'status':<11}{'rows':>10}  amount"]
    for side in ("left", "right"):
        for status in STATUSES:
            entry = summary[side]["by_status"][status]
            amounts = ", ".join(f"{c or '-'} {a}" for c, a in entry["amount"].items()) or "-"
            lines.append(f"{side:<7}{status:<11}{entry['rows']:>10}  {amounts}")
    lines.append("")
    lines.append(f"{'pass':<20}{'action':<10}{'matches':>10}{'match rate':>12}")
    for p in summary["passes"]:
        lines.append(f"{p['name']:<20}{p['action']:<10}{p['matches']:>10}{p['match_rate']:>12.2%}")
    lines.append("")
    lines.append(
        f"breaks {summary['breaks']}, match rate {summary['match_rate']:.2%}, "
        f"duplicate keys {summary['duplicate_keys']['left']}/{summary['duplicate_keys']['right']}, "
        f"time {summary['duration_seconds']:.2f} s"
        + (f", {summary['partitions']} partitions" if "partitions" in summary else "")
    )
    return "\n".join(lines)


def reconcile(args: argparse.Namespace) -> int:
    from recon.engine import run_reconciliation
    from recon.engine.partition import MAX_PARTITIONS, run_partitioned

    if not 1 <= args.partitions <= MAX_PARTITIONS:
        raise InputError(f"--partitions must be between 1 and {MAX_PARTITIONS}")
    if args.processes is not None and args.processes < 1:
        raise InputError("--processes must be at least 1")

    try:
        rules = json.loads(args.rules.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"can not read rules file {args.rules}: {exc.strerror}") from exc
    except json.JSONDecodeError as exc:
        raise InputError(f"rules file {args.rules} is not valid JSON: {exc}") from exc
    left_options = _json_arg(args.left_options, "--left-options")
    right_options = _json_arg(args.right_options, "--right-options")
    args.out.mkdir(parents=True, exist_ok=True)
    if any(p.suffix.lower() != ".parquet" for p in (args.left, args.right)):
        import recon.sources.parsing  # noqa: F401 - loaded before the freeze, so frozen too
    heap.freeze()
    with tempfile.TemporaryDirectory(prefix="recon-cli-") as tmp:
        work = Path(tmp)
        left, right = _canonical_both((args.left, left_options), (args.right, right_options), work)
        results = args.out / "results.parquet"
        settings = {"memory_limit": args.memory_limit, "temp_dir": work, "threads": args.threads}
        if args.partitions > 1:
            summary = run_partitioned(
                left,
                right,
                rules,
                results,
                partitions=args.partitions,
                processes=args.processes,
                **settings,
            )
        else:
            summary = run_reconciliation(left, right, rules, results, **settings)
        if args.csv:
            _write_csvs(results, left, right, args.out)
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    print(_table(summary))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``recon`` console script; returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        return reconcile(args)
    except (InputError, APIError) as exc:
        print(f"recon: {exc}", file=sys.stderr)
        for problem in (getattr(exc, "errors", None) or [])[:20]:
            print(f"  {json.dumps(problem)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
