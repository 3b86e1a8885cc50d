"""Listing and reading exceptions: filters, sorts, keyset cursors, counterparts.

A list is filtered in SQL (``filtered_query``, shared with bulk actions), sorted by one
of ``SORTS`` with the id as tie-breaker, and paged by an opaque cursor of the last
item's sort key (``next`` / ``after``: any depth costs the same) or by page number;
its ``total`` is counted up to 10,000 unless ``count=exact``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Select, String, func, literal, or_, select, tuple_

from instrumentation import db_query_timer
from recon.db_decimal import abs_compared_to, decimal_size
from recon.db_types import SessionLike, utcnow
from recon.errors import NotFound, ValidationError
from recon.pagination import Page, capped_count, decode_keyset, encode_keyset, not_a_cursor
from recon.projects.models import Project
from recon.review.models import OPEN_STATUSES, ReconException

SORTS = ("oldest", "newest", "largest", "smallest")


def _amount_bound(bound: Decimal, at_least: bool) -> Any:
    """Where |amount| >= bound (or <=), exactly, at any scale."""
    compared = abs_compared_to(ReconException.amount, bound)
    return compared >= 0 if at_least else compared <= 0


def _order(sort: str | None) -> tuple[Any, ...]:
    size = decimal_size(ReconException.amount)
    if sort == "newest":
        return (ReconException.opened_at.desc(), ReconException.id.desc())
    if sort == "largest":  # ix_exceptions_list_size read backwards
        return (size.desc(), ReconException.id.desc())
    if sort == "smallest":
        return (size, ReconException.id)
    return (ReconException.opened_at, ReconException.id)


def filtered_query(
    *, project_id: int, filters: dict[str, Any], now: datetime | None = None
) -> Select[Any]:
    """Return the select of the project's exceptions matching ``filters``, oldest first
    unless ``sort`` says newest, largest or smallest (amounts by size).

    Age is in whole days since ``opened_at``: ``min_age_days`` 2 keeps exceptions opened
    two or more days ago, ``max_age_days`` 7 those opened less than eight days ago.
    ``min_amount`` and ``max_amount`` bound the amount's size (the sign is ignored);
    ``ids`` keeps only those exceptions, ``unresolved`` only open, assigned and reopened ones.
    """
    now = now or utcnow()
    query = select(ReconException).where(ReconException.project_id == project_id)
    if filters.get("status") is not None:
        query = query.where(ReconException.status == filters["status"])
    if filters.get("kind") is not None:
        query = query.where(ReconException.kind == filters["kind"])
    if filters.get("side") is not None:
        query = query.where(ReconException.side == filters["side"])
    if filters.get("job") is not None:
        query = query.where(ReconException.job_id == filters["job"])
    if filters.get("assignee") is not None:
        query = query.where(ReconException.assignee_id == filters["assignee"])
    if filters.get("min_age_days") is not None:
        query = query.where(ReconException.opened_at <= now - timedelta(filters["min_age_days"]))
    if filters.get("max_age_days") is not None:
        cutoff = now - timedelta(filters["max_age_days"] + 1)
        query = query.where(ReconException.opened_at > cutoff)
    if filters.get("unresolved"):
        query = query.where(ReconException.status.in_(OPEN_STATUSES))
    if filters.get("ids") is not None:
        query = query.where(ReconException.id.in_(filters["ids"]))
    if filters.get("min_amount") is not None:
        query = query.where(_amount_bound(Decimal(filters["min_amount"]), at_least=True))
    if filters.get("max_amount") is not None:
        query = query.where(_amount_bound(Decimal(filters["max_amount"]), at_least=False))
    if filters.get("q"):
        pattern = f"%{filters['q'].lower()}%"
        query = query.where(
            or_(
                func.lower(ReconException.key).like(pattern),
                func.lower(ReconException.description).like(pattern),
                func.lower(ReconException.note).like(pattern),
            )
        )
    return query.order_by(*_order(filters.get("sort")))


def _keyset(sort: str | None) -> tuple[Any, bool]:
    """The sort's first key (beside id) and whether the list runs descending on it."""
    if sort in ("largest", "smallest"):
        return decimal_size(ReconException.amount), sort == "largest"
    return ReconException.opened_at, sort == "newest"


def _after(sort: str | None, cursor: str) -> Any:
    """Where an exception comes after the cursor's in the list's order."""
    key, descending = _keyset(sort)
    name, value, last_id = decode_keyset(cursor, size=3)
    bound: Any
    try:
        if name != (sort or "oldest") or not isinstance(last_id, int) or not 0 < last_id < 2**31:
            raise ValueError(name)
        if sort in ("largest", "smallest"):
            amount = format(Decimal(value), "f")
            if len(amount) > 64 or not Decimal(value).is_finite():
                raise ValueError(value)
            bound = decimal_size(literal(amount, String()))
        else:
            opened = datetime.fromisoformat(value)
            if opened.tzinfo is None:
                raise ValueError(value)
            bound = literal(opened, ReconException.opened_at.type)
    except (ValueError, TypeError, ArithmeticError):
        raise not_a_cursor() from None
    if sort == "newest":  # (opened_at, id) both descending: one row-value comparison
        return tuple_(ReconException.opened_at, ReconException.id) < tuple_(bound, last_id)
    if sort in (None, "oldest"):
        return tuple_(ReconException.opened_at, ReconException.id) > tuple_(bound, last_id)
    if descending:  # largest: (size, id) both descending
        return tuple_(key, ReconException.id) < tuple_(bound, last_id)
    return tuple_(key, ReconException.id) > tuple_(bound, last_id)


def _cursor(sort: str | None, item: ReconException) -> str:
    value = item.amount if sort in ("largest", "smallest") else item.opened_at.isoformat()
    return encode_keyset([sort or "oldest", value, item.id])


def get_exceptions(
    *,
    session: SessionLike,
    project: Project,
    page: int = 1,
    per_page: int = 50,
    after: str | None = None,
    count: str | None = None,
    **filters: Any,
) -> Page[ReconException]:
    """Return a page of the project's exceptions matching the filters, oldest first: the
    ``page``-th, or the one after the cursor ``after``; ``next`` is the next page's cursor
    and ``total`` stops at TOTAL_CAP unless ``count`` is ``exact``."""
    query = filtered_query(project_id=project.id, filters=filters)
    sort = filters.get("sort")
    if after is not None and page != 1:
        message = "Give either page or after, not both."
        raise ValidationError(message, errors=[{"field": "after", "message": message}])
    with db_query_timer("select", "exceptions"):
        total, exact = capped_count(session, query, exact=count == "exact")
        paged = query.where(_after(sort, after)) if after else query.offset((page - 1) * per_page)
        items = list(session.scalars(paged.limit(per_page + 1)))
    more = len(items) > per_page
    items = items[:per_page]
    return Page(
        items=items,
        page=page,
        per_page=per_page,
        total=total,
        next=_cursor(sort, items[-1]) if more else None,
        total_exact=exact,
    )


def get_exception(*, session: SessionLike, project: Project, exception_id: int) -> ReconException:
    """Return the project's exception ``exception_id`` or raise NotFound."""
    with db_query_timer("select", "exceptions"):
        found = session.get(ReconException, exception_id)
    if found is None or found.project_id != project.id:
        raise NotFound(f"Exception {exception_id} does not exist in this project.")
    return found


def get_counterparts(*, session: SessionLike, exception: ReconException) -> list[ReconException]:
    """Return the other side's exceptions of the same break or suggestion, by row (none for an
    unmatched record)."""
    if exception.match_id is None:
        return []
    with db_query_timer("select", "exceptions"):
        return list(
            session.scalars(
                select(ReconException)
                .where(
                    ReconException.project_id == exception.project_id,
                    ReconException.job_id == exception.job_id,
                    ReconException.match_id == exception.match_id,
                    ReconException.side == ("right" if exception.side == "left" else "left"),
                )
                .order_by(ReconException.row)
            )
        )
