"""The watch beside a running attempt: its cancel poll reads without SQLite's write lock."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from recon import create_app
from recon.extensions import db
from recon.jobs.watch import JobWatch
from tests.conftest import Factory, app_config, migrate_schema


def test_the_cancel_poll_reads_while_another_connection_holds_the_write_lock(
    tmp_path: Path,
) -> None:
    app = create_app(app_config(tmp_path, f"sqlite:///{tmp_path / 'recon.db'}"))
    migrate_schema(app)
    with app.app_context():
        factory = Factory(app)
        user = factory.user()
        project = factory.project(members={user: "owner"})
        left, right = (
            factory.source(project, user, name="L"),
            factory.source(project, user, name="R"),
        )
        job = factory.job(project, left, right)
        job.cancel_requested = True
        job_id, attempt = job.id, job.attempt
        db.session.commit()
        watch = JobWatch(session=db.session, job_id=job_id, attempt=attempt, heartbeat=60)
        # A publish in another process: the write lock held until it commits.
        writer = sqlite3.connect(tmp_path / "recon.db", isolation_level=None)
        writer.execute("BEGIN IMMEDIATE")
        try:
            started = time.monotonic()
            assert watch._tick(beat=False) is True  # sees the committed cancel
            assert time.monotonic() - started < 1.0  # without waiting for the lock
        finally:
            writer.execute("ROLLBACK")
            writer.close()
        assert watch._tick(beat=True) is True  # the heartbeat, a write, once the lock is free
