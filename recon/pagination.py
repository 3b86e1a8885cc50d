"""The one list shape: ``{items, page, per_page, total}`` with a capped ``per_page``.

Long lists also page by keyset (``next`` / ``after``: the sort key of a page's last
item, opaque to clients), so a deep page costs what the first does, and count at
most ``TOTAL_CAP`` rows unless asked for the exact total (``total_exact`` says which).
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import marshmallow as ma
from sqlalchemy import Select, func, select

from recon.db_types import SessionLike
from recon.errors import ValidationError
from recon.fields import PageNumber, Text

T = TypeVar("T")

DEFAULT_PER_PAGE = 50
MAX_PER_PAGE = 500
TOTAL_CAP = 10_000


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    page: int
    per_page: int
    total: int
    next: str | None = None  # keyset lists: the cursor of the next page, passed back as after
    total_exact: bool = True  # False: more than TOTAL_CAP, and ``total`` is TOTAL_CAP


def paginate(session: SessionLike, query: Select[Any], *, page: int, per_page: int) -> Page[Any]:
    """Return one page of ``query``'s scalars and the count of all of them."""
    total = session.execute(select(func.count()).select_from(query.order_by(None).subquery()))
    items = session.scalars(query.limit(per_page).offset((page - 1) * per_page)).unique().all()
    return Page(items=list(items), page=page, per_page=per_page, total=total.scalar_one())


def capped_count(session: SessionLike, query: Select[Any], *, exact: bool) -> tuple[int, bool]:
    """Return (total, exact): the count of ``query``'s rows, or ``TOTAL_CAP`` and False
    when there are more and ``exact`` was not asked for."""
    base = query.order_by(None)
    if not exact:
        base = base.limit(TOTAL_CAP + 1)
    total = session.execute(select(func.count()).select_from(base.subquery())).scalar_one()
    if not exact and total > TOTAL_CAP:
        return TOTAL_CAP, False
    return int(total), True


def encode_keyset(values: list[Any]) -> str:
    """Return the opaque cursor of a page's last item from its sort key (JSON values)."""
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


def not_a_cursor() -> ValidationError:
    """The error for an ``after`` that no page of this list gave out."""
    return ValidationError(
        "after is not a cursor of this list.",
        errors=[{"field": "after", "message": "Pass back the next value of a page."}],
    )


def decode_keyset(cursor: str, *, size: int) -> list[Any]:
    """Return the sort key of a cursor of ``size`` values; ValidationError when it is not
    one of ours."""
    try:
        values = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if isinstance(values, list) and len(values) == size:
            return values
    except (binascii.Error, UnicodeDecodeError, ValueError):
        pass
    raise not_a_cursor()


class PageArgsSchema(ma.Schema):
    page = PageNumber()
    per_page = ma.fields.Integer(
        load_default=DEFAULT_PER_PAGE, validate=ma.validate.Range(min=1, max=MAX_PER_PAGE)
    )


class KeysetArgsSchema(PageArgsSchema):
    after = ma.fields.String(
        load_default=None,
        validate=ma.validate.Length(min=1, max=1000),
        metadata={"description": "the next of the previous page: the page after it"},
    )
    count = ma.fields.String(
        load_default=None,
        validate=ma.validate.OneOf(("exact",)),
        metadata={
            "description": f"exact: count every row (total stops at {TOTAL_CAP} otherwise, "
            "with total_exact false)"
        },
    )


class SearchArgsSchema(PageArgsSchema):
    q = Text(load_default=None, validate=ma.validate.Length(max=200))


def page_schema(
    item_schema: type[ma.Schema], name: str, *, capped: bool = False
) -> type[ma.Schema]:
    """Return a schema class for a page of ``item_schema`` (named for the OpenAPI spec);
    ``capped``: a keyset list whose total may stop at ``TOTAL_CAP``."""
    extra: dict[str, Any] = {}
    if capped:
        extra["total_exact"] = ma.fields.Boolean(
            metadata={"description": f"false: more than {TOTAL_CAP} rows, total says {TOTAL_CAP}"}
        )
    return type(
        name,
        (ma.Schema,),
        {
            **extra,
            "items": ma.fields.List(ma.fields.Nested(item_schema)),
            "page": ma.fields.Integer(),
            "per_page": ma.fields.Integer(),
            "total": ma.fields.Integer(),
            "next": ma.fields.String(
                allow_none=True,
                metadata={"description": "cursor of the next page: pass it back as after"},
            ),
        },
    )
