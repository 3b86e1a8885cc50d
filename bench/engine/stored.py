"""Benchmark data stored as recon stores it, for the benchmarks that read or publish it.

``throwaway_database`` creates a PostgreSQL database for one run and drops it after
(``service_arguments`` adds the ``--database`` and ``--redis`` options of the services);
``bench_app`` is an app on a database with the migrations applied (no Redis, jobs
inline); ``store_sources`` generates both sides (``data.generate``), ingests them with
recon's parser into a project and returns the two Source rows.
"""

from __future__ import annotations

import argparse
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from data import generate


def service_arguments(parser: argparse.ArgumentParser) -> None:
    """``--database`` (the PostgreSQL server of the throwaway databases) and ``--redis``,
    by default the test services' (``RECON_TEST_DATABASE_URL``, ``RECON_TEST_REDIS_URL``)."""
    parser.add_argument(
        "--database",
        default=os.environ.get(
            "RECON_TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
        ),
    )
    parser.add_argument(
        "--redis", default=os.environ.get("RECON_TEST_REDIS_URL", "redis://127.0.0.1:6379/2")
    )


@contextmanager
def throwaway_database(url: str, prefix: str) -> Iterator[str]:
    """Yield the URL of a new database on the server of ``url``; drop it afterwards."""
    base = sa.make_url(url)
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def bench_app(url: str, data_dir: Path) -> Any:
    """An app on ``url`` with the migrations applied: no Redis, no admin, jobs inline."""
    from flask_migrate import upgrade

    from recon import create_app
    from recon.extensions import db

    app = create_app(
        {
            "RECON_DATABASE_URL": url,
            "RECON_DATA_DIR": str(data_dir),
            "RECON_REDIS_URL": None,
            "RECON_ADMIN_PASSWORD": None,
            "RECON_JOB_RUNNER": "inline",
        }
    )
    with app.app_context():
        upgrade()
        db.session.remove()
    return app


def store_sources(
    storage: Any, tmp: Path, project: Any, rows: int, recipe: str = "two_pass"
) -> list[Any]:
    """Generate ``rows`` records a side, ingest both into ``project``; return [left, right]."""
    from recon.extensions import db
    from recon.sources.models import Source
    from recon.sources.parsing import ingest_file

    left_csv, right_csv = generate(tmp, rows, 7, recipe)
    stored = []
    for name, csv in (("left", left_csv), ("right", right_csv)):
        out = storage.path(f"projects/{project.id}/sources/{name}.parquet")
        out.parent.mkdir(parents=True, exist_ok=True)
        result = ingest_file(csv, out, filename=csv.name, temp_dir=storage.tmp_dir)
        source = Source(
            project_id=project.id,
            name=name,
            filename=csv.name,
            format="csv",
            sha256=name * 8,
            size_bytes=csv.stat().st_size,
            row_count=result.row_count,
            options=result.detected_options,
            mapping=result.mapping,
            schema=result.schema,
            columns=list(result.columns),
            amount_scale=result.amount_scale,
            sums=result.sums,
            path=str(out.relative_to(storage.root)),
        )
        db.session.add(source)
        stored.append(source)
    db.session.flush()
    return stored
