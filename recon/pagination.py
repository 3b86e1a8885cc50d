"""The one list shape: ``{items, page, per_page, total}`` with a capped ``per_page``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import marshmallow as ma
from sqlalchemy import Select, func, select

from recon.db_types import SessionLike
from recon.fields import PageNumber

T = TypeVar("T")

DEFAULT_PER_PAGE = 50
MAX_PER_PAGE = 500


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    page: int
    per_page: int
    total: int


def paginate(session: SessionLike, query: Select[Any], *, page: int, per_page: int) -> Page[Any]:
    """Return one page of ``query``'s scalars and the count of all of them."""
    total = session.execute(select(func.count()).select_from(query.order_by(None).subquery()))
    items = session.scalars(query.limit(per_page).offset((page - 1) * per_page)).unique().all()
    return Page(items=list(items), page=page, per_page=per_page, total=total.scalar_one())


class PageArgsSchema(ma.Schema):
    page = PageNumber()
    per_page = ma.fields.Integer(
        load_default=DEFAULT_PER_PAGE, validate=ma.validate.Range(min=1, max=MAX_PER_PAGE)
    )


class SearchArgsSchema(PageArgsSchema):
    q = ma.fields.String(load_default=None, validate=ma.validate.Length(max=200))


def page_schema(item_schema: type[ma.Schema], name: str) -> type[ma.Schema]:
    """Return a schema class for a page of ``item_schema`` (named for the OpenAPI spec)."""
    return type(
        name,
        (ma.Schema,),
        {
            "items": ma.fields.List(ma.fields.Nested(item_schema)),
            "page": ma.fields.Integer(),
            "per_page": ma.fields.Integer(),
            "total": ma.fields.Integer(),
        },
    )
