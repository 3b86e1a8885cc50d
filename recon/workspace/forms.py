"""Form and query fields into the arguments of a service, through the API's own schemas.

An HTML form sends every field, empty or not, and repeats a name for a list;
``load`` drops the empty ones (an empty optional field means "not given") and
collects lists, then validates with the same marshmallow schema the API uses, so
a value is accepted or refused for the same reason in both.
"""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from werkzeug.datastructures import MultiDict

from recon.errors import ValidationError


def _flatten(messages: Any, prefix: str = "") -> list[dict[str, str]]:
    out: list[dict[str, str]] = []
    if isinstance(messages, dict):
        for key, value in messages.items():
            out += _flatten(value, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(messages, list) and all(isinstance(m, str) for m in messages):
        out += [{"field": prefix, "message": m} for m in messages]
    elif isinstance(messages, list):
        for item in messages:
            out += _flatten(item, prefix)
    else:
        out.append({"field": prefix, "message": str(messages)})
    return out


def raw_values(source: MultiDict[str, str], schema: ma.Schema) -> dict[str, Any]:
    """Return the non-empty fields of ``source`` that ``schema`` knows, lists as lists."""
    out: dict[str, Any] = {}
    for name, field in schema.fields.items():
        if field.dump_only:
            continue
        key = field.data_key or name
        if isinstance(field, ma.fields.List):
            values = [v for v in source.getlist(key) if v.strip()]
            if values:
                out[key] = values
        elif source.get(key, "").strip():
            out[key] = (
                source[key].strip() if not isinstance(field, ma.fields.String) else source[key]
            )
    return out


def load(schema: ma.Schema, source: MultiDict[str, str]) -> dict[str, Any]:
    """Return the validated fields; raise ValidationError listing every field problem."""
    try:
        return dict(schema.load(raw_values(source, schema), unknown=ma.EXCLUDE))
    except ma.ValidationError as exc:
        raise ValidationError(
            "Some fields are invalid; see errors.", errors=_flatten(exc.messages)
        ) from None


def field_errors(error: ValidationError | None) -> dict[str, str]:
    """Return ``{field: message}`` of an error's field problems (the first one per field)."""
    out: dict[str, str] = {}
    for item in (error.errors or []) if error is not None else []:
        if isinstance(item, dict) and item.get("field"):
            out.setdefault(str(item["field"]), str(item.get("message", "")))
    return out
