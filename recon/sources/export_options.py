"""The options real bank exports need, beyond delimiter/encoding/decimal (DESIGN section 15).

``parse_export_options`` checks them once and returns the values ``Options``
holds; every bad value is ``bad_options`` naming the option.
"""

from __future__ import annotations

import re
from typing import Any

from recon.sources.currencies import is_iso_currency
from recon.sources.rejections import UploadRejected, problem

# Debit and credit indicators of the common exports, compared case-insensitively.
DEBIT_VALUES = ("D", "DR", "DB", "DEBIT", "DBIT", "AF", "S", "SOLL", "-", "DEBET")
CREDIT_VALUES = ("C", "CR", "CREDIT", "CRDT", "BIJ", "H", "HABEN", "+", "K", "KREDIT")
QUOTES = ("strict", "lenient")
EMPTY_AMOUNT = ("error", "skip")
MAX_SKIP_FOOTER = 10_000
MAX_COLUMNS_OPTION = 500
MAX_PATTERN_CHARS = 500

EXPORT_OPTIONS = (
    "sign_column",
    "debit_values",
    "credit_values",
    "header",
    "columns",
    "skip_footer",
    "currency",
    "key_pattern",
    "key_from",
    "ragged",
    "quotes",
    "empty_amount",
)


def _reject(message: str, column: str) -> UploadRejected:
    return UploadRejected(
        f"Invalid options: {message}",
        reason="bad_options",
        problems=[problem(message, column=column)],
    )


def _string(raw: dict[str, Any], name: str) -> str | None:
    value = raw.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise _reject(f"options.{name} must be a non-empty string", name)
    return value


def _strings(
    raw: dict[str, Any], name: str, *, limit: int = 50, allow_empty: bool = False
) -> tuple[str, ...] | None:
    value = raw.get(name)
    if value is None:
        return None
    if (
        not isinstance(value, list)
        or not value
        or len(value) > limit
        or not all(isinstance(v, str) and (allow_empty or v.strip()) for v in value)
    ):
        kind = "strings" if allow_empty else "non-empty strings"
        raise _reject(f"options.{name} must be a list of 1 to {limit} {kind}", name)
    return tuple(v.strip() for v in value)


def _flag(raw: dict[str, Any], name: str, default: bool) -> bool:
    value = raw.get(name, default)
    if not isinstance(value, bool):
        raise _reject(f"options.{name} must be true or false", name)
    return value


def _choice(raw: dict[str, Any], name: str, allowed: tuple[str, ...]) -> str:
    value = raw.get(name, allowed[0])
    if value not in allowed:
        raise _reject(f"options.{name} must be one of {', '.join(allowed)}", name)
    return str(value)


def _pattern(raw: dict[str, Any]) -> str | None:
    pattern = _string(raw, "key_pattern")
    if pattern is None:
        return None
    if len(pattern) > MAX_PATTERN_CHARS:
        raise _reject(
            f"options.key_pattern is longer than {MAX_PATTERN_CHARS} characters", "key_pattern"
        )
    try:
        groups = re.compile(pattern).groups
    except re.error as exc:
        raise _reject(
            f"options.key_pattern is not a regular expression: {exc}", "key_pattern"
        ) from None
    if groups != 1:
        raise _reject(
            'options.key_pattern needs exactly one group, the key: e.g. "(INV-\\\\d+)"',
            "key_pattern",
        )
    return pattern


def parse_export_options(raw: dict[str, Any]) -> dict[str, Any]:
    """Return the checked export options (defaults filled in), keyed as Options' fields."""
    sign_column = _string(raw, "sign_column")
    debit = _strings(raw, "debit_values")
    credit = _strings(raw, "credit_values")
    if (debit or credit) and sign_column is None:
        raise _reject(
            "options.debit_values and credit_values go with options.sign_column", "sign_column"
        )
    if debit and credit and {d.casefold() for d in debit} & {c.casefold() for c in credit}:
        raise _reject(
            "a value can not be both in debit_values and in credit_values", "debit_values"
        )
    header = _flag(raw, "header", True)
    # An empty name leaves a column unnamed: map it by position ("#3") or leave it out.
    columns = _strings(raw, "columns", limit=MAX_COLUMNS_OPTION, allow_empty=True)
    if not header and columns is None:
        raise _reject(
            "options.header false needs options.columns, the names of the columns", "columns"
        )
    if header and columns is not None:
        raise _reject(
            "options.columns names the columns of a file without a header (header: false)",
            "columns",
        )
    named = [c.casefold() for c in columns or () if c]
    if len(set(named)) != len(named):
        raise _reject("options.columns must not repeat a name", "columns")
    skip_footer = raw.get("skip_footer")
    if skip_footer is not None and (
        isinstance(skip_footer, bool)
        or not isinstance(skip_footer, int)
        or not 0 <= skip_footer <= MAX_SKIP_FOOTER
    ):
        raise _reject(
            f"options.skip_footer must be an integer from 0 to {MAX_SKIP_FOOTER}", "skip_footer"
        )
    currency = _string(raw, "currency")
    if currency is not None:
        currency = currency.strip().upper()
        if not is_iso_currency(currency):
            raise _reject(
                f"options.currency {raw['currency']!r} is not an ISO 4217 currency code", "currency"
            )
    key_pattern = _pattern(raw)
    key_from = _string(raw, "key_from")
    if key_from is not None and key_pattern is None:
        raise _reject("options.key_from names the column options.key_pattern reads", "key_from")
    return {
        "sign_column": sign_column,
        "debit_values": debit or (DEBIT_VALUES if sign_column else None),
        "credit_values": credit or (CREDIT_VALUES if sign_column else None),
        "header": header,
        "columns": columns,
        "skip_footer": skip_footer,
        "currency": currency,
        "key_pattern": key_pattern,
        "key_from": key_from,
        "ragged": _flag(raw, "ragged", False),
        "quotes": _choice(raw, "quotes", QUOTES),
        "empty_amount": _choice(raw, "empty_amount", EMPTY_AMOUNT),
    }
