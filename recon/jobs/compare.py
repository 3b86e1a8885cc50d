"""How two records' canonical fields compare, as the engine normalises them."""

from __future__ import annotations

from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from recon.jobs.results_sql import CANONICAL


def differing_fields(record: dict[str, Any], others: list[dict[str, Any]]) -> set[str]:
    """Return the canonical fields in which ``record`` differs from any of ``others``, compared
    as the engine normalises them (keys trimmed and case-folded, amounts as numbers)."""
    out: set[str] = set()
    for other in others:
        for name in CANONICAL:
            if (
                name in record
                and name in other
                and _norm(name, record[name]) != _norm(name, other[name])
            ):
                out.add(name)
    return out


def _norm(name: str, value: Any) -> Any:
    if value is None or value == "":
        return None
    if name == "amount":
        try:
            return Decimal(str(value))
        except InvalidOperation:
            return str(value)
    if name == "date":
        return value.isoformat() if isinstance(value, date) else str(value)[:10]
    if name == "currency":
        return str(value).strip().upper()
    return " ".join(str(value).split()).casefold()
