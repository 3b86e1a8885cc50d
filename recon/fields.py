"""Field types every schema shares, so the bounds of hostile input live in one place.

- ``Id``, ``RowNumber`` and ``PageNumber``: integers the columns can hold (ids are
  INTEGER, 1 .. 2**31 - 1; row numbers BIGINT, 0 .. 2**63 - 1; pages up to 10**12); a
  larger number in a query or a body is a 422, never an overflow in the driver.
- ``Text``: a string without NUL and without lone surrogates (PostgreSQL refuses
  both, and a lone surrogate can't be encoded to UTF-8 at all).
- ``Name``: ``Text`` that also refuses control characters and bidirectional
  overrides (``\\u202e`` makes "txt.exe" read as "exe.txt"): names of projects,
  sources, files and rule sets are shown to other people.

``text_problem`` and ``name_problem`` are the same checks for code that is not a
marshmallow schema (multipart file names, CLI arguments).
"""

from __future__ import annotations

import unicodedata
from typing import Any

import marshmallow as ma

MAX_ID = 2**31 - 1  # id columns are INTEGER (32-bit on PostgreSQL)
MAX_ROW = 2**63 - 1  # row numbers are BIGINT
MAX_PAGE = 10**12  # times the largest page size (500) still fits a BIGINT offset
# Bidi embeddings, overrides and isolates: U+202A-U+202E, U+2066-U+2069 (and the
# marks U+200E/U+200F, U+061C, which can reorder a name just as well).
BIDI_CONTROLS = frozenset(
    "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"
)


def text_problem(value: str) -> str | None:
    """Return why ``value`` can not be stored as text, or None when it can."""
    if "\x00" in value:
        return "Must not contain NUL characters."
    if any("\ud800" <= ch <= "\udfff" for ch in value):
        return "Must not contain lone surrogates (text that is not valid Unicode)."
    return None


def name_problem(value: str) -> str | None:
    """Return why ``value`` is not acceptable as a name shown to people, or None."""
    problem = text_problem(value)
    if problem:
        return problem
    for ch in value:
        if ch in BIDI_CONTROLS:
            return f"Must not contain bidirectional control characters (U+{ord(ch):04X})."
        if unicodedata.category(ch) == "Cc":
            return f"Must not contain control characters (U+{ord(ch):04X})."
    return None


class Text(ma.fields.String):
    """A string that a database and a page can hold as it is."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        problem = text_problem(text)
        if problem:
            raise ma.ValidationError(problem)
        return text


class Name(Text):
    """A name shown to other people: no control or bidirectional characters."""

    def __init__(self, *, max_length: int = 200, **kwargs: Any) -> None:
        validate = kwargs.pop("validate", None)
        validators = [ma.validate.Length(min=1, max=max_length)]
        if validate is not None:
            validators += list(validate) if isinstance(validate, list | tuple) else [validate]
        super().__init__(validate=validators, **kwargs)

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        problem = name_problem(text)
        if problem:
            raise ma.ValidationError(problem)
        return text


class Id(ma.fields.Integer):
    """An object's id: 1 .. 2**31 - 1."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(strict=kwargs.pop("strict", False), **kwargs)
        self.validators.insert(0, ma.validate.Range(min=1, max=MAX_ID))


class PageNumber(ma.fields.Integer):
    """A page number: 1 .. MAX_PAGE, so that the row offset of any page fits a 64-bit
    integer (pages past the end are empty, not errors)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("load_default", 1)
        super().__init__(**kwargs)
        self.validators.insert(0, ma.validate.Range(min=1, max=MAX_PAGE))


class RowNumber(ma.fields.Integer):
    """A record's row number in its source: 0 .. 2**63 - 1."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.validators.insert(0, ma.validate.Range(min=0, max=MAX_ROW))


class Money(ma.fields.Decimal):
    """A non-negative exact decimal with the digit limits of amounts (20 digits before the
    point, 18 after), given as a string ("0.01") or a JSON number; loaded as Decimal."""

    MAX_INTEGER_DIGITS = 20
    MAX_DECIMALS = 18
    SIGNED = False

    def __init__(self, **kwargs: Any) -> None:
        sign = "-?" if self.SIGNED else ""
        metadata = {
            "type": "string",
            "pattern": rf"^{sign}\d{{1,20}}(\.\d{{1,18}})?$",
            **kwargs.pop("metadata", {}),
        }
        super().__init__(as_string=True, metadata=metadata, **kwargs)

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> Any:
        if isinstance(value, bool):
            raise self.make_error("invalid")
        number = super()._deserialize(value, attr, data, **kwargs)
        if number.is_nan() or number.is_infinite():
            raise self.make_error("special")
        if number < 0 and not self.SIGNED:
            raise ma.ValidationError("Must not be negative.")
        if max(0, -int(number.normalize().as_tuple().exponent)) > self.MAX_DECIMALS:
            raise ma.ValidationError(f"At most {self.MAX_DECIMALS} decimals.")
        if number.adjusted() + 1 > self.MAX_INTEGER_DIGITS:
            raise ma.ValidationError(f"At most {self.MAX_INTEGER_DIGITS} digits before the point.")
        return number


class SignedMoney(Money):
    """An exact decimal with the digit limits of amounts, negative or not."""

    SIGNED = True
