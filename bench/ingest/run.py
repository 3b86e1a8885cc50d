"""Ingestion benchmark: ingest_file and an HTTP upload of a seeded CSV beside DuckDB alone.

    .venv/bin/python bench/ingest/run.py [--rows N] [--seed S] [--workdir DIR] [--clean]

Each measurement runs in its own child process, which reports its wall time and
its own peak RSS, so the figures do not mix. Prints rows/s, wall time and peak
RSS of the ingestion, of the upload through the service and through the HTTP
API (``POST /api/projects/<id>/sources`` to a server on a local socket, the
file streamed as multipart), the time DuckDB takes to count and to convert the
same file (auto-detected read_csv), and the ratios. ``--clean`` uses a clean
file (plain amounts, ISO dates) instead of the bank-style one and adds DuckDB's
typed COPY of it (the columns declared, DECIMAL and DATE) as the baseline of
the upload target (HTTP upload within 1.5x of it). It also checks the result:
the sum of amounts equals the generator's total to the cent and every row
number matches the record's position in the file.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from generate import generate, generate_clean  # noqa: E402 - the generator sits beside this script

TARGET_ROWS_PER_SECOND = 400_000
TARGET_PEAK_RSS_MB = 600
TARGET_HTTP_OVER_TYPED_COPY = 1.5
TYPED_COLUMNS = (
    "{'reference': 'VARCHAR', 'amount': 'DECIMAL(18, 2)', 'date': 'DATE', "
    "'currency': 'VARCHAR', 'description': 'VARCHAR'}"
)

CHILD = r"""
import json, resource, sys, time
import duckdb
from recon.sources.parsing import ingest_file
mode, src, out = sys.argv[1:4]
if mode in ("service", "http"):
    # The whole upload path the API takes: stream + hash, parse, Parquet, DB row, file move.
    import io, os
    from flask_migrate import upgrade
    from recon import create_app
    from recon.extensions import db
    from recon.projects.models import Project
    from recon.sources.service import Upload, create_source
    work = sys.argv[4]
    app = create_app({"RECON_DATABASE_URL": f"sqlite:///{work}/bench-{mode}.db",
                      "RECON_DATA_DIR": f"{work}/data-{mode}", "RECON_JOB_RUNNER": "inline"})
    ctx = app.app_context()
    ctx.push()
    upgrade()
    project = Project(name="bench")
    db.session.add(project)
    db.session.commit()
if mode == "http":
    import http.client, threading, uuid
    from werkzeug.serving import make_server
    from recon.auth.service import issue_token
    from recon.users.models import Role, User
    user = User(username="bench", role=Role.admin, password_hash="unused", active=True)
    db.session.add(user)
    db.session.commit()
    raw_token, _ = issue_token(session=db.session, user=user, ttl=3600)
    db.session.commit()
    project_id = project.id
    db.session.close()  # this thread's session must not hold SQLite while the server writes
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    boundary = uuid.uuid4().hex
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\nbench\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
            f"filename=\"statement.csv\"\r\nContent-Type: text/csv\r\n\r\n").encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
started = time.perf_counter()  # after the imports: a server has them loaded already
if mode == "http":
    size = os.path.getsize(src)
    with open(src, "rb") as stream:
        body = iter([head, *iter(lambda: stream.read(1 << 20), b""), tail])
        conn = http.client.HTTPConnection("127.0.0.1", server.server_port, timeout=600)
        conn.request("POST", f"/api/projects/{project_id}/sources", body=body, headers={
            "Authorization": f"Bearer {raw_token}",
            "Content-Type": f"multipart/form-data; boundary={boundary}",
            "Content-Length": str(len(head) + size + len(tail))})
        response = conn.getresponse()
        payload = json.loads(response.read())
    if response.status != 201:
        raise SystemExit(f"upload failed: {response.status} {payload}")  # the log is on stderr
    extra = {"rows": payload["row_count"], "sums": payload["sums"], "options": payload["options"]}
    server.shutdown()
elif mode == "service":
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
    elif mode == "duckdb_typed_copy":
        rows = con.execute(
            f"COPY (SELECT * FROM read_csv('{src}', header = true, columns = {sys.argv[5]})) "
            f"TO '{out}' (FORMAT parquet, COMPRESSION zstd)"
        ).fetchall()[0][0]
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
        [sys.executable, "-c", CHILD, mode, str(src), str(out), str(work), TYPED_COLUMNS],
        check=False,
        capture_output=True,
        text=True,
    )
    if completed.returncode:
        raise SystemExit(f"{mode} failed:\n{completed.stderr[-3000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def check_rows(out: Path, prefix: int) -> int:
    """Return how many rows carry a number other than their record's position.

    Each key is a prefix of ``prefix`` characters followed by the record's number.
    """
    import duckdb

    query = (
        f"SELECT count(*) FROM read_parquet('{out}') "  # noqa: S608 - our own temp file
        f"WHERE row <> CAST(substr(key, {prefix + 1}) AS BIGINT)"
    )
    return int(duckdb.sql(query).fetchall()[0][0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument(
        "--clean",
        action="store_true",
        help="a clean file (plain amounts, ISO dates), with DuckDB's typed COPY as baseline",
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="recon-bench-", dir=args.workdir) as tmp:
        work = Path(tmp)
        src = work / "statement.csv"
        cents = (generate_clean if args.clean else generate)(src, args.rows, args.seed)
        size_mb = src.stat().st_size / 1024**2
        kind = "clean" if args.clean else "bank-style"
        load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
        print(
            f"input: {args.rows:,} rows, {size_mb:.1f} MB {kind} CSV (seed {args.seed}); "
            f"load average {load} on {os.cpu_count()} cores"
        )

        ingest = measure("ingest", src, work / "source.parquet", work)
        service = measure("service", src, work / "unused.parquet", work)
        upload = measure("http", src, work / "unused.parquet", work)
        count = measure("duckdb_count", src, work / "unused.parquet", work)
        copy = measure("duckdb_copy", src, work / "plain.parquet", work)
        typed = (
            measure("duckdb_typed_copy", src, work / "typed.parquet", work) if args.clean else None
        )

        total = sum((Decimal(v) for v in ingest["sums"].values()), Decimal(0))
        expected = Decimal(cents).scaleb(-2)
        misnumbered = check_rows(work / "source.parquet", 3 if args.clean else 2)

        print(f"detected: {ingest['options']}")
        for label, m in (
            ("ingest_file", ingest),
            ("upload via the service", service),
            ("upload via HTTP", upload),
            ("duckdb count(*)", count),
            ("duckdb COPY to parquet", copy),
            *([("duckdb typed COPY", typed)] if typed else []),
        ):
            print(
                f"{label + ':':<24}{m['seconds']:6.2f} s {m['rows'] / m['seconds']:>11,.0f} rows/s"
                f"  peak RSS {m['peak_mb']:5.0f} MB"
            )
        print(
            f"overhead: {ingest['seconds'] / count['seconds']:.1f}x count, "
            f"{ingest['seconds'] / copy['seconds']:.2f}x plain COPY"
        )
        if typed is not None:
            ratio = upload["seconds"] / typed["seconds"]
            verdict = "met" if ratio <= TARGET_HTTP_OVER_TYPED_COPY else "NOT met"
            print(
                f"HTTP upload / typed COPY: {ratio:.2f}x "
                f"(target <= {TARGET_HTTP_OVER_TYPED_COPY}x: {verdict})"
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
