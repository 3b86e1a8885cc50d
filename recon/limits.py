"""What every request is checked for before a view parses it (DESIGN.md section 19).

- Ids in URLs fit their INTEGER columns: ``<int:...>`` matches 0 .. 2**31 - 1 only, so
  a larger id is a 404 like any id that does not exist, never an overflow in the driver.
- A body that is not an upload may be at most ``RECON_MAX_JSON_KB``: larger is a 413
  before a byte of it is parsed (uploads keep ``RECON_MAX_UPLOAD_MB``).
- A JSON body must be JSON a person could have meant: nested at most
  ``MAX_JSON_DEPTH`` deep, numbers finite, no NUL and no lone surrogates in any
  string; otherwise 422 naming the first problem. Query strings may not carry NUL.

Marshmallow fields in ``recon.fields`` hold the per-field bounds; this module holds
what is true of every request, so no view has to remember it.
"""

from __future__ import annotations

import json
import math
from typing import Any

from flask import Flask, current_app, request
from werkzeug.routing import IntegerConverter

from recon.errors import PayloadTooLarge, ValidationError
from recon.fields import MAX_ID, text_problem

MAX_JSON_DEPTH = 64
UPLOAD_TYPES = ("multipart/form-data",)


class IdConverter(IntegerConverter):
    """``<int:...>`` bounded to what an id column holds."""

    def __init__(self, map: Any, *args: Any, **kwargs: Any) -> None:  # noqa: A002 - werkzeug's name
        kwargs.setdefault("max", MAX_ID)
        super().__init__(map, *args, **kwargs)


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"the number {text[:40]} is out of range")
    return value


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _problem(value: Any) -> tuple[str, str] | None:
    """Return the first refused place in ``value`` (parsed JSON) as (field, message)."""
    stack: list[tuple[Any, int, str]] = [(value, 1, "")]
    while stack:
        item, depth, path = stack.pop()
        if depth > MAX_JSON_DEPTH:
            return path, f"Nested deeper than {MAX_JSON_DEPTH} levels."
        if isinstance(item, str):
            problem = text_problem(item)
            if problem:
                return path, problem
        elif isinstance(item, dict):
            for key, child in item.items():
                place = f"{path}.{key}" if path else key
                problem = text_problem(key)
                if problem:
                    return path, f"A key: {problem}"
                stack.append((child, depth + 1, place))
        elif isinstance(item, list):
            stack.extend((child, depth + 1, f"{path}[{i}]") for i, child in enumerate(item))
    return None


def check_json(data: bytes) -> None:
    """Raise ValidationError unless ``data`` is JSON every view can take as it is."""
    try:
        value = json.loads(data, parse_float=_finite, parse_constant=_no_constant)
    except RecursionError:
        message = f"Nested deeper than {MAX_JSON_DEPTH} levels."
        raise ValidationError(
            f"The JSON body is refused: {message}",
            code="malformed_json",
            errors=[{"field": "", "message": message}],
        ) from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, digit limits, ranges
        message = str(exc)[:200]
        raise ValidationError(
            f"The request body is not valid JSON: {message}.",
            code="malformed_json",
            errors=[{"field": "", "message": message}],
        ) from None
    found = _problem(value)
    if found:
        field, message = found
        raise ValidationError(
            f"The JSON body is refused at {field or 'its top'}: {message}",
            code="malformed_json",
            errors=[{"field": field, "message": message}],
        )


def _check_request() -> None:
    for name, values in request.args.lists():
        for value in (name, *values):
            problem = text_problem(value)
            if problem:
                raise ValidationError(
                    f"A query parameter is refused: {problem}",
                    code="bad_query",
                    errors=[{"field": name, "message": problem}],
                )
    if request.mimetype in UPLOAD_TYPES:
        return
    limit_kb = current_app.config["RECON_MAX_JSON_KB"]
    if (request.content_length or 0) > limit_kb * 1024:
        raise PayloadTooLarge(
            f"The request body is larger than {limit_kb} KB (RECON_MAX_JSON_KB); "
            "only uploads (multipart/form-data) may be larger."
        )
    # Werkzeug answers 413 while reading a chunked body (no Content-Length) past this.
    request.max_content_length = limit_kb * 1024
    if request.is_json and request.content_length != 0:
        data = request.get_data(cache=True)
        if data:
            check_json(data)


def install_converters(app: Flask) -> None:
    """Bound URL ids; must run before any blueprint adds its rules."""
    app.url_map.converters["int"] = IdConverter


def init_app(app: Flask) -> None:
    """Check every request (after authentication, so a stranger learns nothing from a 422)."""
    app.before_request(_check_request)
