"""A thread beside each running attempt: the heartbeat, and a cancel that interrupts DuckDB.

The attempt's own thread is inside the engine (one DuckDB statement can run for
minutes) or inside the publish, so it can neither write a heartbeat nor notice a
cancel in time. The watch does both on its own database connection: every
``poll`` seconds it reads ``cancel_requested``, every ``heartbeat`` seconds it
writes ``heartbeat_at`` (only while the job is still this attempt's and
running). Once a cancel is seen it calls ``interrupt()`` on the engine's DuckDB
connection, again at each poll, because an interrupt only stops the statement
running at that moment and the engine may be between two.

A session bound to one Connection (the tests' per-test transaction) has no
engine to open a second connection from: the watch then runs no thread and the
engine's checks between steps read the cancel through the session itself.

``LIVE`` holds the (job, attempt) pairs watched in this process: the reaper
never reaps them (their heartbeat may be late behind a long SQLite write lock)
and the tmp cleanup keeps their files.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.engine import Connection, Engine

from recon.db_types import SessionLike, reading_only, utcnow
from recon.jobs.models import Job, JobStatus

log = logging.getLogger("recon.jobs")

LIVE: set[tuple[int, int]] = set()
_LIVE_LOCK = threading.Lock()


def live_attempts() -> frozenset[tuple[int, int]]:
    """The (job id, attempt) pairs running in this process now."""
    with _LIVE_LOCK:
        return frozenset(LIVE)


class JobWatch:
    """Heartbeat and cancel polling for one attempt; ``attach`` is the engine's connection hook."""

    def __init__(
        self,
        *,
        session: SessionLike,
        job_id: int,
        attempt: int,
        heartbeat: float,
        poll: float = 1.0,
    ) -> None:
        bind = session.get_bind()
        self.session = session
        self.bind: Engine | None = None if isinstance(bind, Connection) else bind
        self.job_id, self.attempt = job_id, attempt
        self.heartbeat, self.poll = heartbeat, min(poll, heartbeat)
        self.cancelled = threading.Event()
        self._stop = threading.Event()
        self._con: Any = None
        self._con_lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name=f"recon-watch-{job_id}", daemon=True)

    def __enter__(self) -> JobWatch:
        with _LIVE_LOCK:
            LIVE.add((self.job_id, self.attempt))
        if self.bind is not None:
            self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self.attach(None)
        with _LIVE_LOCK:
            LIVE.discard((self.job_id, self.attempt))
        # Not joined: a heartbeat write may wait behind this attempt's own publish
        # transaction; once that ends the write matches nothing and the thread exits.

    def attach(self, con: Any) -> None:
        """Hold the engine's DuckDB connection (None when the engine closes it)."""
        with self._con_lock:
            self._con = con
        if con is not None and self.cancelled.is_set():
            self._interrupt()

    def should_cancel(self) -> bool:
        """Whether a cancel was seen: the engine asks between its steps."""
        if self.bind is None and not self.cancelled.is_set():
            requested = self.session.scalar(
                select(Job.cancel_requested).where(Job.id == self.job_id)
            )
            self.session.commit()
            if requested:
                self.cancelled.set()
        return self.cancelled.is_set()

    def _interrupt(self) -> None:
        with self._con_lock:
            if self._con is not None:
                self._con.interrupt()

    def _run(self) -> None:
        last_beat = time.monotonic()
        while not self._stop.wait(self.poll):
            beat = time.monotonic() - last_beat >= self.heartbeat
            try:
                requested = self._tick(beat)
            except Exception as exc:  # a DB outage: the next tick tries again, the reaper waits
                log.warning(
                    "job %s attempt %s: heartbeat failed: %s",
                    self.job_id,
                    self.attempt,
                    type(exc).__name__,
                    extra={"job_id": self.job_id, "attempt": self.attempt},
                )
                continue
            if beat:
                last_beat = time.monotonic()
            if requested:
                self.cancelled.set()
                self._interrupt()

    def _tick(self, beat: bool) -> bool:
        assert self.bind is not None
        if not beat:  # only the cancel flag: a read, which on SQLite takes no write lock
            with reading_only(), self.bind.begin() as conn:
                return self._cancel_requested(conn)
        with self.bind.begin() as conn:
            conn.execute(
                update(Job)
                .where(
                    Job.id == self.job_id,
                    Job.attempt == self.attempt,
                    Job.status == JobStatus.running,
                )
                .values(heartbeat_at=utcnow())
            )
            return self._cancel_requested(conn)

    def _cancel_requested(self, conn: Connection) -> bool:
        return bool(conn.scalar(select(Job.cancel_requested).where(Job.id == self.job_id)))


PROGRESS_EVERY = 0.5  # seconds between progress writes


class ProgressReporter:
    """Writes progress (and a heartbeat) at most every PROGRESS_EVERY seconds."""

    def __init__(self, session: SessionLike, job_id: int, attempt: int) -> None:
        self.session, self.job_id, self.attempt = session, job_id, attempt
        self.last = 0.0

    def progress(self, fraction: float, name: str) -> None:
        now = time.monotonic()
        if now - self.last < PROGRESS_EVERY and fraction < 1.0:
            return
        self.last = now
        self.session.execute(
            update(Job)
            .where(Job.id == self.job_id, Job.attempt == self.attempt)
            .values(progress={"fraction": round(fraction, 4), "pass": name}, heartbeat_at=utcnow())
        )
        self.session.commit()
