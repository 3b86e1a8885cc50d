"""The job backlog, for the gauges instrumentation reads at each collection.

Instrumentation knows nothing of jobs: ``backlog_reader(app)`` is the hook it
is given, and ``read_backlog`` the query behind it (one grouped count over the
status index).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from instrumentation import Backlog
from recon.db_types import SessionLike, utcnow
from recon.extensions import db
from recon.jobs.models import ACTIVE, Job, JobStatus

log = logging.getLogger("recon.jobs")


def read_backlog(*, session: SessionLike) -> Backlog:
    """Return the jobs queued and running now and the age of the oldest queued one."""
    rows = session.execute(
        select(Job.status, func.count(), func.min(Job.created_at))
        .where(Job.status.in_(ACTIVE))
        .group_by(Job.status)
    ).all()
    counts = {status: (n, oldest) for status, n, oldest in rows}
    queued, oldest = counts.get(JobStatus.queued, (0, None))
    running, _ = counts.get(JobStatus.running, (0, None))
    age = (utcnow() - oldest).total_seconds() if oldest is not None else 0.0
    return Backlog(queued=int(queued), running=int(running), oldest_queued_seconds=max(0.0, age))


def backlog_reader(app: Flask) -> Callable[[], Backlog | None]:
    """Return the hook the backlog gauges call: the backlog, or None when the DB can't say."""

    def read() -> Backlog | None:
        # Its own app context, hence its own session: a scrape must not touch the
        # session of the request (or job) it interrupts.
        with app.app_context():
            try:
                return read_backlog(session=db.session)
            except SQLAlchemyError as exc:
                # The series go missing for that scrape; readiness reports the DB.
                log.warning("job backlog not read: %s", type(exc).__name__)
                return None

    return read
