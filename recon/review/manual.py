"""Manual matches: records of both sides that a person declares to be one transaction.

The amounts are read from the job's source Parquet files (the record of
truth), summed exactly, and must balance within the tolerance given, or carry
a write-off reason. The records must be open exceptions of that job; they are
resolved with reason ``matched_manually``. When the write-off needs approval
(the project's settings), the match and its records wait ``pending_approval``
for a second person (``recon.review.approvals``).

A manual match can be listed, read and undone: undoing returns its records to
the exceptions (open, or assigned when someone has them) with their comments and
history, and keeps the match itself, marked ``undone``, for the audit trail.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, func, or_, select

from instrumentation import db_query_timer
from recon.audit.service import SYSTEM, Actor, record
from recon.cache_keys import Cache
from recon.db_types import SessionLike, utcnow
from recon.duckdb_conn import cursor
from recon.errors import Conflict, NotFound, ValidationError
from recon.jobs.models import Job
from recon.pagination import Page
from recon.projects.models import Project
from recon.projects.settings import project_settings
from recon.review.approvals import request_approval
from recon.review.models import (
    OPEN_STATUSES,
    ApprovalKind,
    ExceptionStatus,
    ManualMatch,
    ManualMatchStatus,
    ReconException,
)
from recon.review.signoff import ensure_unlocked
from recon.review.state import MATCHED_MANUALLY, decisions_changed, pair_key_of
from recon.sources.models import Source
from recon.storage import Storage

REASON = MATCHED_MANUALLY


def _duplicates(side: str, rows: Sequence[int]) -> list[dict[str, Any]]:
    seen: set[int] = set()
    out = []
    for row in rows:
        if row in seen:
            out.append({"side": side, "row": row, "message": "listed twice"})
        seen.add(row)
    return out


def _amounts(storage: Storage, source: Source, rows: Sequence[int]) -> list[tuple[str, str]]:
    """Return (amount as exact text, currency) of the source's ``rows``."""
    con = cursor()
    try:
        return con.execute(
            f"""SELECT CAST(CAST(amount AS DECIMAL(38, {int(source.amount_scale)})) AS VARCHAR),
                       coalesce(upper(trim(CAST(currency AS VARCHAR))), '')
                FROM read_parquet(?) WHERE "row" IN (SELECT unnest(?))""",  # noqa: S608
            [str(storage.path(source.path)), list(rows)],
        ).fetchall()
    finally:
        con.close()


def _open_exceptions(
    session: SessionLike, job: Job, left_rows: Sequence[int], right_rows: Sequence[int]
) -> list[ReconException]:
    found = list(
        session.scalars(
            select(ReconException).where(
                ReconException.project_id == job.project_id,
                ReconException.job_id == job.id,
                ReconException.status.in_(OPEN_STATUSES),
                or_(
                    and_(ReconException.side == "left", ReconException.row.in_(left_rows)),
                    and_(ReconException.side == "right", ReconException.row.in_(right_rows)),
                ),
            )
        )
    )
    have = {(e.side, e.row) for e in found}
    problems = [
        {"side": side, "row": row, "message": "not an open exception of this job"}
        for side, rows in (("left", left_rows), ("right", right_rows))
        for row in rows
        if (side, row) not in have
    ]
    if problems:
        raise ValidationError(
            f"{len(problems)} of the records are not open exceptions of job {job.id}.",
            code="not_open_exceptions",
            errors=problems,
        )
    return found


@dataclass(frozen=True)
class Balance:
    """The sums of the records a manual match would join, exact, at the larger scale."""

    left: str
    right: str
    difference: str  # sum(left) - sum(right)
    currency: str | None
    exceptions: list[ReconException]

    @property
    def exact(self) -> Decimal:
        return Decimal(self.difference)


def _job(session: SessionLike, project: Project, job_id: int) -> Job:
    job = session.get(Job, job_id)
    if job is None or job.project_id != project.id:
        raise NotFound(f"Job {job_id} does not exist in this project.")
    return job


def _balance(
    session: SessionLike,
    storage: Storage,
    job: Job,
    left_rows: Sequence[int],
    right_rows: Sequence[int],
) -> Balance:
    repeated = _duplicates("left", left_rows) + _duplicates("right", right_rows)
    if repeated:
        raise ValidationError("A record is listed twice.", errors=repeated)
    with db_query_timer("select", "exceptions"):
        exceptions = _open_exceptions(session, job, left_rows, right_rows)
    left_source = session.get(Source, job.left_source_id)
    right_source = session.get(Source, job.right_source_id)
    if left_source is None or right_source is None:  # sources are RESTRICTed while jobs exist
        raise NotFound(f"The sources of job {job.id} are gone.")
    left = _amounts(storage, left_source, left_rows)
    right = _amounts(storage, right_source, right_rows)
    currencies = {ccy for _, ccy in left + right if ccy}
    if len(currencies) > 1:
        raise ValidationError(
            f"The records are in {len(currencies)} currencies ({', '.join(sorted(currencies))}); "
            "a manual match must be in one.",
            code="mixed_currencies",
        )
    exp = Decimal(1).scaleb(-max(left_source.amount_scale, right_source.amount_scale))
    left_sum = sum((Decimal(a) for a, _ in left), Decimal(0))
    right_sum = sum((Decimal(a) for a, _ in right), Decimal(0))
    return Balance(
        left=format(left_sum.quantize(exp), "f"),
        right=format(right_sum.quantize(exp), "f"),
        difference=format((left_sum - right_sum).quantize(exp), "f"),
        currency=next(iter(currencies), None),
        exceptions=exceptions,
    )


def get_balance(
    *,
    session: SessionLike,
    storage: Storage,
    project: Project,
    job_id: int,
    left_rows: Sequence[int],
    right_rows: Sequence[int],
) -> Balance:
    """Return what a manual match of these records would balance to, changing nothing; raise
    as ``create_manual_match`` would for records it can not match."""
    job = _job(session, project, job_id)
    return _balance(session, storage, job, left_rows, right_rows)


def create_manual_match(
    *,
    session: SessionLike,
    storage: Storage,
    project: Project,
    job_id: int,
    left_rows: Sequence[int],
    right_rows: Sequence[int],
    tolerance: Decimal | None = None,
    write_off_reason: str | None = None,
    note: str | None = None,
    actor: Actor = SYSTEM,
    cache: Cache | None = None,
) -> ManualMatch:
    """Return the new manual match of ``left_rows`` with ``right_rows`` of job ``job_id``:
    its exceptions resolved, or pending approval when its write-off needs a second person;
    ValidationError when it does not balance."""
    job = _job(session, project, job_id)
    ensure_unlocked(
        session=session, project_id=project.id, pair_key=pair_key_of(job), job_id=job.id
    )
    balance = _balance(session, storage, job, left_rows, right_rows)
    exceptions, shown, currency = balance.exceptions, balance.difference, balance.currency or ""
    allowed = tolerance if tolerance is not None else Decimal(0)
    written_off = abs(balance.exact) > allowed
    if written_off and not write_off_reason:
        raise ValidationError(
            f"The records do not balance: left minus right is {shown}, more than the "
            f"tolerance {allowed}. Give a write_off_reason to match them anyway.",
            code="unbalanced",
            errors=[{"field": "write_off_reason", "message": f"Required: difference {shown}."}],
            difference=shown,
        )
    pending = written_off and project_settings(project).needs_approval(balance.exact, currency)
    match = ManualMatch(
        project_id=project.id,
        job_id=job.id,
        left_rows=list(left_rows),
        right_rows=list(right_rows),
        difference=shown,
        write_off_reason=write_off_reason if written_off else None,
        note=note,
        currency=currency or None,
        status=ManualMatchStatus.pending_approval if pending else ManualMatchStatus.active,
        created_by_id=actor.id,
    )
    session.add(match)
    session.flush()
    approval = None
    if pending:
        approval = request_approval(
            session=session,
            project=project,
            job_id=job.id,
            kind=ApprovalKind.manual_match,
            write_off=balance.exact,
            currency=currency,
            reason_code=REASON,
            note=write_off_reason,
            actor=actor,
            manual_match_id=match.id,
        )
    now = utcnow()
    for exc in exceptions:
        exc.manual_match_id, exc.updated_at = match.id, now
        if pending:
            exc.status, exc.reason_code = ExceptionStatus.pending_approval, REASON
        else:
            exc.status, exc.reason_code, exc.resolved_at = ExceptionStatus.resolved, REASON, now
    record(
        session=session,
        actor=actor,
        action="manual_match.create",
        object_type="manual_match",
        object_id=match.id,
        project_id=project.id,
        after={
            "job_id": job.id,
            "left_rows": list(left_rows),
            "right_rows": list(right_rows),
            "difference": shown,
            "tolerance": str(allowed),
            "write_off_reason": match.write_off_reason,
            "status": match.status.value,
            "approval_id": approval.id if approval else None,
            "note": note,
            "exception_ids": sorted(e.id for e in exceptions),
        },
    )
    with db_query_timer("insert", "manual_matches"):
        session.commit()
    decisions_changed(
        session=session, cache=cache, project_id=project.id, pair_key=pair_key_of(job)
    )
    return match


def get_manual_matches(
    *,
    session: SessionLike,
    project: Project,
    job_id: int,
    status: str | None = None,
    page: int = 1,
    per_page: int = 50,
) -> Page[ManualMatch]:
    """Return a page of the manual matches made on the job's sources pair, newest first."""
    job = _job(session, project, job_id)
    pair_jobs = select(Job.id).where(
        Job.project_id == project.id,
        Job.left_source_id == job.left_source_id,
        Job.right_source_id == job.right_source_id,
    )
    where = [ManualMatch.project_id == project.id, ManualMatch.job_id.in_(pair_jobs)]
    if status:
        where.append(ManualMatch.status == ManualMatchStatus(status))
    with db_query_timer("select", "manual_matches"):
        total = session.scalar(select(func.count()).select_from(ManualMatch).where(*where)) or 0
        items = session.scalars(
            select(ManualMatch)
            .where(*where)
            .order_by(ManualMatch.id.desc())
            .limit(per_page)
            .offset((page - 1) * per_page)
        ).all()
    return Page(items=list(items), page=page, per_page=per_page, total=int(total))


def get_manual_match(*, session: SessionLike, project: Project, match_id: int) -> ManualMatch:
    """Return the project's manual match ``match_id`` or raise NotFound."""
    match = session.get(ManualMatch, match_id)
    if match is None or match.project_id != project.id:
        raise NotFound(f"Manual match {match_id} does not exist in this project.")
    return match


def undo_manual_match(
    *,
    session: SessionLike,
    project: Project,
    match: ManualMatch,
    actor: Actor = SYSTEM,
    cache: Cache | None = None,
) -> ManualMatch:
    """Return the manual match undone: its records are exceptions to work again."""
    if match.status != ManualMatchStatus.active:
        raise Conflict(
            f"Manual match {match.id} is {match.status.value.replace('_', ' ')}; only an active "
            "one can be undone (decide its approval instead).",
            code="invalid_transition",
        )
    job = session.get(Job, match.job_id)
    assert job is not None  # manual matches are deleted with their job
    members = list(
        session.scalars(select(ReconException).where(ReconException.manual_match_id == match.id))
    )
    for exc in members:
        ensure_unlocked(
            session=session, project_id=project.id, pair_key=exc.pair_key, job_id=exc.job_id
        )
    now = utcnow()
    for exc in members:
        exc.status = ExceptionStatus.assigned if exc.assignee_id else ExceptionStatus.reopened
        exc.reason_code, exc.resolved_at, exc.manual_match_id, exc.updated_at = (
            None,
            None,
            None,
            now,
        )
    match.status, match.undone_at, match.undone_by_id = ManualMatchStatus.undone, now, actor.id
    record(
        session=session,
        actor=actor,
        action="manual_match.undo",
        object_type="manual_match",
        object_id=match.id,
        project_id=project.id,
        before={"status": "active"},
        after={"status": "undone", "exception_ids": sorted(e.id for e in members)},
    )
    with db_query_timer("update", "manual_matches"):
        session.commit()
    decisions_changed(
        session=session, cache=cache, project_id=project.id, pair_key=pair_key_of(job)
    )
    return match
