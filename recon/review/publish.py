"""Turn a finished job's results into exceptions, carrying work over from earlier jobs.

DuckDB joins the results Parquet with the two source Parquet files and hands
back only the records that need a person (``break``, ``unmatched``,
``suggested``), each with its canonical fields and, for breaks and
suggestions, its counterpart (the other side's records of the same
``match_id``). Matched records never reach Python.

Identity is (project, sources pair, side, row), so a re-run on the same pair
meets the exceptions of the previous run:

- resolved or closed: left exactly as they are (a re-run never reopens what
  people resolved, even when the record is still an exception);
- open, assigned or reopened and still an exception: moved to the new job
  with the new kind, counterpart and diff; status, assignee, note and comments
  are kept;
- open, assigned or reopened and now matched: closed with reason
  ``matched_by_job`` (their ``job_id`` stays the job that last reported them);
- new records: inserted ``open``.

It is a bulk write (DESIGN.md section 16): DuckDB prepares each record as one
plain tuple (the counterpart and diff already JSON text) and hands them over in
batches of ``BATCH``, written by ``COPY`` on PostgreSQL and ``executemany`` on
SQLite. On a pair with no exceptions yet they go straight into the table; else
into a temporary staging table, and set-based statements update the carried-over
exceptions and insert the new ones. One more closes the matched ones. No dict or
ORM object per exception, no list of the whole job. A thread reads the batches a
little ahead of the writer, so DuckDB's query and the database's writes overlap; on
SQLite the publish writes with a larger page cache (the exceptions' indexes are
written in random order).

Nothing here commits: the caller publishes the job row and the exceptions in
one transaction, and writes one audit event for the job.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Generator, Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple, cast

from sqlalchemy import CursorResult, bindparam, select, text, update

from instrumentation import db_query_timer
from recon.db_types import SessionLike, UTCDateTime, utcnow
from recon.duckdb_conn import connect
from recon.jobs.models import Job
from recon.review import tallies
from recon.review.models import OPEN_STATUSES, ExceptionStatus, ReconException

BATCH = 50_000
# Batches read ahead of the writer: DuckDB's query runs while the database writes.
AHEAD = 2
# SQLite's page cache (KiB) while a publish writes: the exceptions' indexes are written in
# random order (amount size, match ids) and outgrow the default 2 MB cache at tens of
# thousands of rows, so each insert read their pages again. Set back afterwards.
SQLITE_PUBLISH_CACHE_KIB = 131_072
Batches = Iterator[list[tuple[Any, ...]]]
CLOSED_BY_JOB = "matched_by_job"
STAGE = "recon_publish_stage"
# The staging table's columns, in the order DuckDB hands each record over.
COLUMNS = (
    ("side", "VARCHAR(8)"),
    ("row", "BIGINT"),
    ("kind", "VARCHAR(16)"),
    ("match_id", "BIGINT"),
    ("pass_name", "VARCHAR(100)"),
    ("confidence", "VARCHAR(16)"),
    ("key", "VARCHAR(255)"),
    ("amount", "VARCHAR(64)"),
    ("scale", "INTEGER"),
    ("currency", "VARCHAR(8)"),
    ("date", "DATE"),
    ("description", "TEXT"),
    ("counterpart", "TEXT"),
    ("diff", "TEXT"),
)
# Written from the staging row on a new or carried-over exception (JSON ones cast on PostgreSQL).
COPIED = tuple(name for name, _ in COLUMNS if name not in ("side", "row"))
JSON_COLUMNS = ("counterpart", "diff")
# What a new exception adds to its staging row.
FRESH = ("project_id", "job_id", "pair_key", "status", "opened_at", "updated_at")
OPEN = ", ".join(f"'{s.value}'" for s in OPEN_STATUSES)

# One row per exception record, ready to stage; the counterpart list is built in DuckDB
# too. ``amount`` is the text of a DECIMAL at the side's scale, so it always has exactly
# ``scale`` decimals. Dates are ISO text: what both databases read for a DATE.
_QUERY = """
WITH res AS (
    SELECT side, "row", status, pass, match_id, confidence, amount_diff, date_diff_days,
           diff_fields
    FROM read_parquet($results)
    WHERE status IN ('break', 'unmatched', 'suggested')
),
src AS (
    SELECT 'left' AS side, CAST("row" AS BIGINT) AS "row", left(CAST("key" AS VARCHAR), 255) AS k,
           CAST(CAST(amount AS DECIMAL(38, {left_scale})) AS VARCHAR) AS amount,
           {left_scale} AS scale,
           CAST("date" AS DATE) AS d, left(CAST(currency AS VARCHAR), 8) AS ccy,
           CAST(description AS VARCHAR) AS descr
    FROM read_parquet($left)
    UNION ALL
    SELECT 'right', CAST("row" AS BIGINT), left(CAST("key" AS VARCHAR), 255),
           CAST(CAST(amount AS DECIMAL(38, {right_scale})) AS VARCHAR), {right_scale},
           CAST("date" AS DATE), left(CAST(currency AS VARCHAR), 8),
           CAST(description AS VARCHAR)
    FROM read_parquet($right)
),
rec AS (
    SELECT r.*, s.k, s.amount, s.scale, s.d, s.ccy, s.descr
    FROM res r JOIN src s ON s.side = r.side AND s."row" = r."row"
),
grouped AS (
    SELECT match_id, side, to_json(list({{'side': side, 'row': "row", 'key': k, 'amount': amount,
                                 'date': CAST(d AS VARCHAR), 'currency': ccy}} ORDER BY "row"))
               AS records
    FROM rec WHERE match_id IS NOT NULL AND status IN ('break', 'suggested')
    GROUP BY match_id, side
)
SELECT r.side, r."row", r.status, CAST(r.match_id AS BIGINT), r.pass,
       CAST(CAST(r.confidence AS DECIMAL(6, 2)) AS VARCHAR),
       r.k, r.amount, r.scale, nullif(r.ccy, ''), CAST(r.d AS VARCHAR), r.descr,
       CASE WHEN r.status <> 'unmatched' THEN g.records END,
       CAST(json_object(
           'amount_diff', CAST(r.amount_diff AS VARCHAR),
           'date_diff_days', CAST(r.date_diff_days AS BIGINT),
           'fields', list_filter(string_split(coalesce(r.diff_fields, ''), ','),
                                 lambda f: f <> '')
       ) AS VARCHAR)
FROM rec r
LEFT JOIN grouped g ON r.status IN ('break', 'suggested') AND g.match_id = r.match_id
                    AND g.side <> r.side
ORDER BY r.side, r."row"
"""


def pair_key(job: Job) -> str:
    """Return the key of the job's sources pair, the scope in which exceptions carry over."""
    return f"{job.left_source_id}:{job.right_source_id}"


def read_exception_records(
    *,
    results_path: Path,
    left_path: Path,
    right_path: Path,
    scale_left: int,
    scale_right: int,
    batch: int = BATCH,
) -> Generator[list[tuple[Any, ...]]]:
    """Yield the break, unmatched and suggested records as staging tuples, ``batch`` at a time."""
    query = _QUERY.format(left_scale=int(scale_left), right_scale=int(scale_right))
    con = connect()
    try:
        con.execute(
            query,
            {"results": str(results_path), "left": str(left_path), "right": str(right_path)},
        )
        while rows := con.fetchmany(batch):
            yield rows
    finally:
        con.close()


class _Failed(NamedTuple):
    error: BaseException


_END = object()


def read_ahead(batches: Generator[list[tuple[Any, ...]]], depth: int = AHEAD) -> Batches:
    """Yield the batches of ``batches``, read in a thread of their own up to ``depth``
    batches ahead, so reading them (DuckDB, which releases the GIL) and writing them
    overlap. An error while reading is raised here; when the caller stops early, the
    reader stops and its generator is closed (DuckDB's connection with it)."""
    slots: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def read() -> None:
        try:
            for rows in batches:
                slots.put(rows)
                if stop.is_set():
                    break
            else:
                slots.put(_END)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            slots.put(_Failed(exc))
        finally:
            batches.close()

    reader = threading.Thread(target=read, name="recon-publish-read", daemon=True)
    reader.start()
    try:
        while (item := slots.get()) is not _END:
            if isinstance(item, _Failed):
                raise item.error
            yield item
    finally:
        stop.set()
        while reader.is_alive():  # a put waiting on a full queue
            with suppress(queue.Empty):
                slots.get(timeout=0.05)
        reader.join()


@contextmanager
def _page_cache(session: SessionLike) -> Iterator[None]:
    """On SQLite, a page cache of ``SQLITE_PUBLISH_CACHE_KIB`` for the block, then the
    connection's own again (which frees the pages over it)."""
    connection = session.connection()
    if connection.dialect.name != "sqlite":
        yield
        return
    before = {
        schema: int(connection.exec_driver_sql(f"PRAGMA {schema}.cache_size").one()[0])
        for schema in ("main", "temp")  # temp: the staging table of a carry-over
    }
    for schema in before:
        connection.exec_driver_sql(f"PRAGMA {schema}.cache_size = -{SQLITE_PUBLISH_CACHE_KIB}")
    try:
        yield
    finally:
        for schema, size in before.items():
            connection.exec_driver_sql(f"PRAGMA {schema}.cache_size = {size}")


def _copy(session: SessionLike, table: str, names: Sequence[str], batches: Batches) -> int:
    """Write the batches' tuples into ``table``'s columns ``names`` (COPY on PostgreSQL,
    executemany on SQLite) in the session's transaction; return the rows written."""
    connection = session.connection()
    columns = ", ".join(f'"{name}"' for name in names)
    written = 0
    if connection.dialect.name == "postgresql":
        raw = connection.connection.driver_connection
        assert raw is not None  # noqa: S101  (a live session connection always has one)
        with (
            raw.cursor() as cursor,  # psycopg's, not DuckDB's
            cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy,
        ):
            for rows in batches:
                for row in rows:
                    copy.write_row(row)
                written += len(rows)
        return written
    # Through SQLAlchemy (a DB-API executemany of the tuples as they are), so the statement
    # is timed and traced like any other. S608: names are constants; the values are bound.
    statement = f"INSERT INTO {table} ({columns}) VALUES ({', '.join('?' * len(names))})"  # noqa: S608
    for rows in batches:
        connection.exec_driver_sql(statement, rows)
        written += len(rows)
    return written


def _stage(session: SessionLike, batches: Batches) -> int:
    """Load the batches into a new staging table of this transaction; return the rows."""
    # The key makes each carried-over or new record one index probe on SQLite.
    columns = ", ".join(f'"{name}" {kind}' for name, kind in COLUMNS)
    session.execute(text(f"DROP TABLE IF EXISTS {STAGE}"))
    session.execute(text(f'CREATE TEMPORARY TABLE {STAGE} ({columns}, PRIMARY KEY (side, "row"))'))
    staged = _copy(session, STAGE, [name for name, _ in COLUMNS], batches)
    if session.connection().dialect.name == "postgresql":
        session.execute(text(f"ANALYZE {STAGE}"))  # temporary tables get no autovacuum
    return staged


def _insert_all(session: SessionLike, job: Job, now: datetime, batches: Batches) -> int:
    """A pair with no exceptions yet: every record goes straight into the table."""
    dialect = session.connection().dialect
    # The dialect's own processor: SQLite's writes the text SQLAlchemy reads back (the
    # type's generic one hands sqlite3 a datetime, adapted by isoformat, per row and column).
    stamp = ReconException.__table__.c.opened_at.type.dialect_impl(dialect).bind_processor(dialect)
    at = stamp(now) if stamp else now
    extra = (job.project_id, job.id, pair_key(job), ExceptionStatus.open.value, at, at)
    names = [name for name, _ in COLUMNS] + list(FRESH)
    with_extra = ([row + extra for row in rows] for rows in batches)
    return _copy(session, "exceptions", names, with_extra)


def _merge(session: SessionLike, job: Job, now: datetime) -> tuple[int, int]:
    """Move the staged records that are still open onto the job, insert the new ones;
    return (updated, inserted)."""
    postgres = session.connection().dialect.name == "postgresql"

    def value(name: str) -> str:
        return f"CAST(s.{name} AS JSON)" if postgres and name in JSON_COLUMNS else f's."{name}"'

    same_record = (
        'e.project_id = :project AND e.pair_key = :pair AND e.side = s.side AND e."row" = s."row"'
    )
    params = {"project": job.project_id, "pair": pair_key(job), "job": job.id, "now": now}
    # S608 below: only constant names are formatted in; every value is a bound parameter.
    carried = text(
        f"""UPDATE exceptions AS e SET job_id = :job, updated_at = :now,
                {", ".join(f'"{name}" = {value(name)}' for name in COPIED)}
            FROM {STAGE} AS s WHERE {same_record} AND e.status IN ({OPEN})"""  # noqa: S608
    ).bindparams(bindparam("now", type_=UTCDateTime()))
    inserted = ", ".join(f'"{name}"' for name in COPIED)
    fresh = text(
        f"""INSERT INTO exceptions (project_id, job_id, pair_key, status, opened_at, updated_at,
                                    side, "row", {inserted})
            SELECT CAST(:project AS INTEGER), CAST(:job AS INTEGER), CAST(:pair AS VARCHAR(64)),
                   '{ExceptionStatus.open.value}', :now, :now,
                   s.side, s."row", {", ".join(value(name) for name in COPIED)}
            FROM {STAGE} AS s
            WHERE NOT EXISTS (SELECT 1 FROM exceptions AS e WHERE {same_record})
            ORDER BY s.side, s."row"
        """  # noqa: S608
    ).bindparams(bindparam("now", type_=UTCDateTime()))
    with db_query_timer("update", "exceptions"):
        updated = cast("CursorResult[Any]", session.execute(carried, params)).rowcount
    with db_query_timer("insert", "exceptions"):
        opened = cast("CursorResult[Any]", session.execute(fresh, params)).rowcount
    session.execute(text(f"DROP TABLE {STAGE}"))
    return int(updated), int(opened)


def _has_exceptions(session: SessionLike, job: Job) -> bool:
    found = session.execute(
        select(ReconException.id)
        .where(
            ReconException.project_id == job.project_id, ReconException.pair_key == pair_key(job)
        )
        .limit(1)
    ).first()
    return found is not None


def publish_exceptions(
    *,
    session: SessionLike,
    job: Job,
    results_path: Path,
    left_path: Path,
    right_path: Path,
    scale_left: int,
    scale_right: int,
    now: datetime | None = None,
) -> dict[str, int]:
    """Add the job's exceptions to the session's transaction (no commit); return the counts
    ``opened``, ``updated``, ``kept_resolved`` and ``closed``."""
    now = now or utcnow()
    batches = read_ahead(
        read_exception_records(
            results_path=results_path,
            left_path=left_path,
            right_path=right_path,
            scale_left=scale_left,
            scale_right=scale_right,
        )
    )
    with _page_cache(session):
        return _publish(session, job, now, batches)


def _publish(session: SessionLike, job: Job, now: datetime, batches: Batches) -> dict[str, int]:
    """Insert or merge the batches, close what the job no longer reports, rebuild the
    pair's tallies; return the counts of ``publish_exceptions``."""
    if not _has_exceptions(session, job):
        with db_query_timer("insert", "exceptions"):
            opened = staged = _insert_all(session, job, now, batches)
        updated = 0
    else:
        with db_query_timer("insert", "exceptions"):
            staged = _stage(session, batches)
        updated, opened = _merge(session, job, now)
    with db_query_timer("update", "exceptions"):
        # Whatever is still open on this pair and was not reported again is now matched.
        result = session.execute(
            update(ReconException)
            .where(
                ReconException.project_id == job.project_id,
                ReconException.pair_key == pair_key(job),
                ReconException.status.in_(OPEN_STATUSES),
                ReconException.job_id != job.id,
            )
            .values(
                status=ExceptionStatus.closed,
                reason_code=CLOSED_BY_JOB,
                resolved_at=now,
                updated_at=now,
            )
            .execution_options(synchronize_session=False, tallied=True)
        )
        closed = cast("CursorResult[Any]", result).rowcount
    with db_query_timer("insert", "exception_tallies"):
        tallies.rebuild(session, job.project_id, pair_key(job))
    return {
        "opened": opened,
        "updated": updated,
        "kept_resolved": staged - opened - updated,
        "closed": int(closed or 0),
    }
