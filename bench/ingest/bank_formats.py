"""Bank-format benchmark: ingest_file on seeded MT940 and CAMT.053 files beside the parsers alone.

    .venv/bin/python bench/ingest/bank_formats.py [--records 100000] [--seed 7] [--repeat 1]
        [--cold]

Each measurement runs in its own child process (wall time, imports excluded, and
its own peak RSS), with its loaded heap frozen as recon's web and worker
processes freeze theirs (``recon.heap``; ``--cold`` leaves it in reach, as a
process that never froze it: CAMT.053 takes 1.6-2x as long then).
Baselines, measured in the same run on the same files:
``mt-940 alone`` (``mt940.parse_statements`` on the whole text, what recon's MT940
reader is built on) and ``C ElementTree alone`` (``xml.etree.ElementTree.parse``
of the whole CAMT file, no extraction: a floor for any ElementTree reader).
Checks that the sums equal the generator's total to the cent and every statement
balances; prints records/s, ratios to the baselines and whether the target
(>= 50,000 records/s, peak RSS bounded: < 300 MB at 100,000 records) was met.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from statements import camt053, mt940  # noqa: E402 - the generator sits beside this script

TARGET_RECORDS_PER_SECOND = 50_000
TARGET_PEAK_RSS_MB = 300

CHILD = r"""
import gc, json, resource, sys, time
mode, src, out, work, heap = sys.argv[1:6]
if mode == "ingest":
    from recon.sources.parsing import ingest_file
elif mode == "mt940_alone":
    import mt940
else:
    import xml.etree.ElementTree as ET
if heap == "frozen":  # as a web or worker process is once loaded (recon.heap)
    gc.collect()
    gc.freeze()
started = time.perf_counter()
if mode == "ingest":
    result = ingest_file(src, out, filename="statement", temp_dir=work)
    extra = {"records": result.row_count, "sums": result.sums,
             "balanced": all(s["balanced"] for s in result.statements),
             "statements": len(result.statements)}
elif mode == "mt940_alone":
    with open(src, "rb") as handle:
        parsed = mt940.parse_statements(handle.read())
    extra = {"records": sum(len(t) for t in parsed)}
else:
    tree = ET.parse(src)
    ntry = "{urn:iso:std:iso:20022:tech:xsd:camt.053.001.02}Ntry"
    extra = {"records": sum(1 for _ in tree.getroot().iter(ntry))}
seconds = time.perf_counter() - started
peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": seconds, "peak_mb": peak_mb, **extra}))
"""


def measure(mode: str, src: Path, work: Path, heap: str) -> dict:
    out = work / f"{mode}.parquet"
    completed = subprocess.run(
        [sys.executable, "-c", CHILD, mode, str(src), str(out), str(work), heap],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(completed.stdout.strip().splitlines()[-1])


def line(label: str, m: dict) -> str:
    rate = m["records"] / m["seconds"]
    return (
        f"{label + ':':<26}{m['seconds']:6.2f} s {rate:>10,.0f} records/s"
        f"  peak RSS {m['peak_mb']:5.0f} MB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument(
        "--repeat", type=int, default=1, help="runs of each; the fastest counts (shared machines)"
    )
    parser.add_argument(
        "--cold",
        action="store_true",
        help="leave the loaded heap in the collector's reach (a process that never froze it)",
    )
    args = parser.parse_args()
    heap = "cold" if args.cold else "frozen"
    failed = False
    with tempfile.TemporaryDirectory(prefix="recon-bench-banks-", dir=args.workdir) as tmp:
        work = Path(tmp)
        for name, generate, baseline, label in (
            ("MT940", mt940, "mt940_alone", "mt-940 alone"),
            ("CAMT.053", camt053, "etree_alone", "C ElementTree alone"),
        ):
            src = work / f"statement.{name.lower()}"
            cents = generate(src, args.records, args.seed)
            size = src.stat().st_size / 1024**2
            print(f"{name}: {args.records:,} records, {size:.1f} MB, heap {heap}")
            runs = [  # interleaved, so a busy spell on a shared machine hits both
                (measure("ingest", src, work, heap), measure(baseline, src, work, heap))
                for _ in range(args.repeat)
            ]
            ingest = min((r[0] for r in runs), key=lambda m: m["seconds"])
            base = min((r[1] for r in runs), key=lambda m: m["seconds"])
            print(line("  ingest_file", ingest))
            print(line(f"  {label}", base))
            ratio = ingest["seconds"] / base["seconds"]
            print(f"  ratio: ingest_file takes {ratio:.2f}x {label}")
            total = sum((Decimal(v) for v in ingest["sums"].values()), Decimal(0))
            expected = Decimal(cents).scaleb(-2)
            ok = total == expected and ingest["records"] == args.records
            print(
                f"  sum check: {total} == {expected}: {'OK' if ok else 'MISMATCH'};"
                f" {ingest['statements']} statements balanced: {ingest['balanced']}"
            )
            rate = ingest["records"] / ingest["seconds"]
            meets = rate >= TARGET_RECORDS_PER_SECOND and ingest["peak_mb"] < TARGET_PEAK_RSS_MB
            print(
                f"  target >= {TARGET_RECORDS_PER_SECOND:,} records/s and < {TARGET_PEAK_RSS_MB}"
                f" MB: {'met' if meets else 'NOT met'}"
            )
            failed = failed or not ok or not ingest["balanced"]
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
