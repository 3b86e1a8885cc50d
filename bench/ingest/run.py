"""Ingestion benchmark: ingest_file on a seeded 1,000,000-row CSV beside DuckDB alone.

    .venv/bin/python bench/ingest/run.py [--rows N] [--seed S] [--workdir DIR]

Each measurement runs in its own child process, which reports its wall time and
its own peak RSS, so the figures do not mix. Prints rows/s, wall time and peak
RSS of the ingestion, the time DuckDB takes to count and to convert the same
file (auto-detected read_csv), and the ratios. It also checks the result: the
sum of amounts equals the generator's total to the cent and every row number
matches the record's position in the file.
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
from generate import generate  # noqa: E402 - the generator sits beside this script

TARGET_ROWS_PER_SECOND = 400_000
TARGET_PEAK_RSS_MB = 600

CHILD = r"""
import json, resource, sys, time
import duckdb
from recon.sources.parsing import ingest_file
mode, src, out = sys.argv[1:4]
if mode == "service":
    # The whole upload path the API takes: stream + hash, parse, Parquet, DB row, file move.
    import io, os
    from flask_migrate import upgrade
    from recon import create_app
    from recon.extensions import db
    from recon.projects.models import Project
    from recon.sources.service import Upload, create_source
    work = sys.argv[4]
    app = create_app({"RECON_DATABASE_URL": f"sqlite:///{work}/bench.db",
                      "RECON_DATA_DIR": f"{work}/data", "RECON_JOB_RUNNER": "inline"})
    ctx = app.app_context()
    ctx.push()
    upgrade()
    project = Project(name="bench")
    db.session.add(project)
    db.session.commit()
started = time.perf_counter()  # after the imports: a server has them loaded already
if mode == "service":
    with open(src, "rb") as stream:
        source = create_source(
            session=db.session, storage=app.extensions["recon_storage"], project=project,
            upload=Upload(stream=stream, filename="statement.csv", name="bench", mapping=None,
                          options=None),
            max_bytes=2**40)
    extra = {"rows": source.row_count, "sums": source.sums, "options": source.options}
elif mode == "ingest":
    result = ingest_file(src, out, filename="statement.csv", temp_dir=sys.argv[4])
    extra = {"rows": result.row_count, "sums": result.sums, "options": result.detected_options}
else:
    con = duckdb.connect()
    if mode == "duckdb_count":
        rows = con.execute(f"SELECT count(*) FROM read_csv('{src}')").fetchall()[0][0]
    else:
        rows = con.execute(
            f"COPY (SELECT * FROM read_csv('{src}')) TO '{out}' (FORMAT parquet, COMPRESSION zstd)"
        ).fetchall()[0][0]
    extra = {"rows": rows}
seconds = time.perf_counter() - started
peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": seconds, "peak_mb": peak_mb, **extra}))
"""


def measure(mode: str, src: Path, out: Path, work: Path) -> dict:
    completed = subprocess.run(
        [sys.executable, "-c", CHILD, mode, str(src), str(out), str(work)],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(completed.stdout.strip().splitlines()[-1])


def check_rows(out: Path) -> int:
    """Return how many rows carry a number other than their record's position."""
    import duckdb

    query = (
        f"SELECT count(*) FROM read_parquet('{out}') "  # noqa: S608 - our own temp file
        "WHERE row <> CAST(substr(key, 3) AS BIGINT)"
    )
    return int(duckdb.sql(query).fetchall()[0][0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="recon-bench-", dir=args.workdir) as tmp:
        work = Path(tmp)
        src = work / "statement.csv"
        cents = generate(src, args.rows, args.seed)
        size_mb = src.stat().st_size / 1024**2
        print(f"input: {args.rows:,} rows, {size_mb:.1f} MB CSV (seed {args.seed})")

        ingest = measure("ingest", src, work / "source.parquet", work)
        service = measure("service", src, work / "unused.parquet", work)
        count = measure("duckdb_count", src, work / "unused.parquet", work)
        copy = measure("duckdb_copy", src, work / "plain.parquet", work)

        total = sum((Decimal(v) for v in ingest["sums"].values()), Decimal(0))
        expected = Decimal(cents).scaleb(-2)
        misnumbered = check_rows(work / "source.parquet")

        print(f"detected: {ingest['options']}")
        for label, m in (
            ("ingest_file", ingest),
            ("upload via the service", service),
            ("duckdb count(*)", count),
            ("duckdb COPY to parquet", copy),
        ):
            print(
                f"{label + ':':<24}{m['seconds']:6.2f} s {m['rows'] / m['seconds']:>11,.0f} rows/s"
                f"  peak RSS {m['peak_mb']:5.0f} MB"
            )
        print(
            f"overhead: {ingest['seconds'] / count['seconds']:.1f}x count, "
            f"{ingest['seconds'] / copy['seconds']:.2f}x plain COPY"
        )
        print(f"sum check: {total} == {expected}: {'OK' if total == expected else 'MISMATCH'}")
        print(f"row numbers: {'OK' if misnumbered == 0 else f'{misnumbered} WRONG'}")
        rate = service["rows"] / service["seconds"]  # the target is end to end
        meets = rate >= TARGET_ROWS_PER_SECOND and service["peak_mb"] < TARGET_PEAK_RSS_MB
        print(
            f"target >= {TARGET_ROWS_PER_SECOND:,} rows/s and < {TARGET_PEAK_RSS_MB} MB: "
            f"{'met' if meets else 'NOT met'}"
        )
        if total != expected or misnumbered:
            sys.exit(1)


if __name__ == "__main__":
    main()
