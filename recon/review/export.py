"""Exports of a job in its current state, streamed: CSV or XLSX, three views.

- ``records``: one row per record (both sides), current status and who decided it,
  the engine's status, canonical fields and the source's own columns;
- ``pairs``: one row per match, suggestion or break (manual matches included), the
  left and right records side by side (keys joined with "; ", amounts summed exactly)
  and the difference left minus right;
- ``exceptions``: the exceptions of the job's sources pair with status, assignee,
  reason, note and age in days.

Formula-safe in both formats (OWASP CSV injection): a text cell that a spreadsheet
would run (``=``, ``+``, ``-``, ``@``, tab, CR, LF first) is prefixed with ``'`` in
CSV; XLSX cells are written as strings or numbers, never as formulas. Numbers stay
numbers (``-1250.00`` can be summed), an amount with more than 15 significant digits
is written as text in XLSX so it is never rounded.

Memory is bounded: rows come from DuckDB a range at a time (``recon.jobs.results``),
CSV leaves as it is written, XLSX is written in XlsxWriter's constant-memory mode to a
file under the data directory's tmp and streamed from there.
"""

from __future__ import annotations

import csv
import io
import itertools
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, TypeVar, cast

import xlsxwriter
from flask import Response, stream_with_context
from flask_smorest import Blueprint
from sqlalchemy import select

from recon.cache_keys import Cache
from recon.db_types import SessionLike, utcnow
from recon.jobs.models import Job
from recon.jobs.results import require_results
from recon.jobs.results_export import ExportReader
from recon.jobs.results_sql import NO_OVERRIDES, Filters
from recon.review.models import ReconException
from recon.review.state import applied_overrides, pair_key_of
from recon.sources.models import Source
from recon.storage import Storage
from recon.users.models import User

F = TypeVar("F", bound=Callable[..., Any])
FORMATS = ("csv", "xlsx")
EXPORT_VIEWS = ("records", "pairs", "exceptions")
FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n")
NUMERIC = {
    "row",
    "match_id",
    "confidence",
    "amount_diff",
    "date_diff_days",
    "amount",
    "left_amount",
    "right_amount",
    "difference",
    "age_days",
    "left_records",
    "right_records",
    "id",
    "manual_match_id",
}
XLSX_SHEET_ROWS = 1_048_575  # Excel's limit, less the header
MIMETYPES = {
    "csv": "text/csv",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


@dataclass(frozen=True)
class Export:
    filename: str
    mimetype: str
    chunks: Iterator[bytes]


def download(exported: Export) -> Response:
    """The export as a streamed attachment. Its first chunk is made before the response
    starts: an error there is the error's answer, not a broken download."""
    first = next(exported.chunks, b"")
    return Response(
        stream_with_context(itertools.chain([first], exported.chunks)),
        mimetype=exported.mimetype,
        headers={"Content-Disposition": f'attachment; filename="{exported.filename}"'},
    )


def documented_download(blp: Blueprint) -> Callable[[F], F]:
    """The OpenAPI responses of a CSV/XLSX download, for a route of ``blp``."""

    def decorate(view: F) -> F:
        view = blp.alt_response(
            200,
            schema={"format": "binary", "type": "string"},
            content_type=MIMETYPES["xlsx"],
            description="format=xlsx",
            success=True,
        )(view)
        return cast(
            F,
            blp.response(200, {"format": "binary", "type": "string"}, content_type="text/csv")(
                view
            ),
        )

    return decorate


def neutralise(value: Any) -> Any:
    """Return a text cell made safe for spreadsheets; numbers and empty cells as they are."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


Batches = Iterable[tuple[list[str], list[tuple[Any, ...]]]]


def _csv(batches: Batches) -> Iterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    header = False
    for names, rows in batches:
        if not header:
            writer.writerow([neutralise(name) for name in names])
            header = True
        numeric = [name in NUMERIC for name in names]
        for row in rows:
            writer.writerow(
                [v if num else neutralise(v) for v, num in zip(row, numeric, strict=True)]
            )
        yield buffer.getvalue().encode()
        buffer.seek(0)
        buffer.truncate()


def _number(value: Any) -> float | None:
    """The value as an Excel number when that is exact enough (15 significant digits)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return None
    if not number.is_finite() or len(number.as_tuple().digits) > 15:
        return None
    return float(number)


def _xlsx(batches: Batches, tmp_dir: Path, sheet: str) -> Iterator[bytes]:
    tmp_dir.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix="export-", suffix=".xlsx", dir=tmp_dir)
    os.close(fd)
    try:
        workbook = xlsxwriter.Workbook(
            name, {"constant_memory": True, "strings_to_formulas": False, "strings_to_urls": False}
        )
        worksheet, line, sheets, names = None, 0, 0, None
        for batch_names, rows in batches:
            names = batch_names
            numeric = [n in NUMERIC for n in names]
            for row in rows:
                if worksheet is None or line > XLSX_SHEET_ROWS:
                    sheets += 1
                    worksheet = workbook.add_worksheet(f"{sheet} {sheets}" if sheets > 1 else sheet)
                    for col, title in enumerate(names):
                        worksheet.write_string(0, col, title)
                    line = 1
                for col, (value, num) in enumerate(zip(row, numeric, strict=True)):
                    if value is None:
                        continue
                    number = _number(value) if num else None
                    if number is not None:
                        worksheet.write_number(line, col, number)
                    else:
                        worksheet.write_string(line, col, str(value))
                line += 1
        if worksheet is None:
            worksheet = workbook.add_worksheet(sheet)
            for col, title in enumerate(names or []):
                worksheet.write_string(0, col, title)
        workbook.close()
        with open(name, "rb") as handle:
            while chunk := handle.read(1 << 20):
                yield chunk
    finally:
        Path(name).unlink(missing_ok=True)


def _sources(session: SessionLike, job: Job) -> tuple[Source, Source]:
    left, right = session.get(Source, job.left_source_id), session.get(Source, job.right_source_id)
    assert left is not None and right is not None  # the foreign keys keep them
    return left, right


def _queries(reader: ExportReader, view: str, filters: Filters) -> Iterator[tuple[str, list[Any]]]:
    if view == "pairs":
        yield reader.pairs_sql(filters)
    else:
        yield from reader.records_sql(filters)


BATCH = 5000  # rows read from the database at a time
EXCEPTION_COLUMNS = (
    "id",
    "job_id",
    "side",
    "row",
    "kind",
    "status",
    "key",
    "amount",
    "currency",
    "date",
    "description",
    "assignee",
    "reason_code",
    "note",
    "opened_at",
    "resolved_at",
    "age_days",
    "manual_match_id",
)


def _exceptions(session: SessionLike, job: Job, status: str | None) -> Batches:
    query = (
        select(ReconException, User.username)
        .outerjoin(User, User.id == ReconException.assignee_id)
        .where(
            ReconException.project_id == job.project_id,
            ReconException.pair_key == pair_key_of(job),
        )
        .order_by(ReconException.side, ReconException.row)
    )
    if status:
        query = query.where(ReconException.status == status)
    return exception_batches(session, query)


def exception_batches(session: SessionLike, query: Any) -> Batches:
    """The rows of a select of (ReconException, assignee's username), EXCEPTION_COLUMNS."""
    now = utcnow()
    rows = (
        (
            exc.id,
            exc.job_id,
            exc.side,
            exc.row,
            exc.kind.value,
            exc.status.value,
            exc.key,
            exc.amount,
            exc.currency,
            exc.date.isoformat() if exc.date else None,
            exc.description,
            assignee,
            exc.reason_code,
            exc.note,
            exc.opened_at.isoformat(),
            exc.resolved_at.isoformat() if exc.resolved_at else None,
            (now - exc.opened_at).days,
            exc.manual_match_id,
        )
        for exc, assignee in session.execute(query.execution_options(yield_per=BATCH))
    )
    return batched(rows, EXCEPTION_COLUMNS)


def batched(rows: Iterable[tuple[Any, ...]], columns: tuple[str, ...]) -> Batches:
    """``rows`` as (column names, rows) batches of BATCH rows (the last one may be empty)."""
    batch: list[tuple[Any, ...]] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= BATCH:
            yield list(columns), batch
            batch = []
    yield list(columns), batch


def stream(batches: Batches, fmt: str, storage: Storage, sheet: str) -> Iterator[bytes]:
    yield from _csv(batches) if fmt == "csv" else _xlsx(batches, storage.tmp_dir, sheet)


def export_job(
    *,
    session: SessionLike,
    storage: Storage,
    job: Job,
    view: str = "records",
    fmt: str = "csv",
    status: str | None = None,
    current: bool = True,
    filters: Filters | None = None,
    cache: Cache | None = None,
) -> Export:
    """Return the export of the job: its name, type and a stream of bytes. ``status`` is a
    result status for records and pairs (with the other ``filters``), an exception status
    for exceptions."""
    require_results(job)
    left, right = _sources(session, job)
    table = (
        applied_overrides(session=session, storage=storage, job=job, cache=cache)
        if current
        else NO_OVERRIDES
    )
    name = f"job-{job.id}-{view}-{status or 'all'}.{fmt}"

    def database() -> Iterator[bytes]:
        yield from stream(_exceptions(session, job, status), fmt, storage, view)

    def results() -> Iterator[bytes]:
        with ExportReader(
            storage=storage, job=job, left=left, right=right, overrides=table
        ) as reader:
            queries = _queries(reader, view, replace(filters or Filters(), status=status))
            if fmt == "csv":  # DuckDB writes the CSV: far faster than Python's csv module
                yield from reader.csv(queries, frozenset(NUMERIC))
            else:
                yield from _xlsx(reader.fetch(queries), storage.tmp_dir, view)

    chunks = database() if view == "exceptions" else results()
    return Export(filename=name, mimetype=MIMETYPES[fmt], chunks=chunks)
