"""Rules: validated before anything runs, every problem reported at once.

A rules document is ``{"passes": [pass, ...], "break_on": [field, ...]}``; a
pass is ``{name, match_on, amount_tolerance?, date_window_days?,
description_min_similarity?, cardinality?, action?}``. ``break_on`` defaults
to ``["key"]``; ``[]`` turns breaks off.

``match_on`` and ``break_on`` name canonical fields, or the extra fields the
sources carry (a source's ``mapping.fields``: Parquet columns ``fields.<name>``,
compared normalised like the key). ``validate_rules(rules, fields=...)`` names
the extra fields available; ``fields=ANY_FIELD`` accepts any well-formed name
(rule sets saved apart from sources; a job checks them against its sources).
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from recon.engine.errors import RulesError

FIELDS = ("key", "amount", "date", "currency", "description")
CARDINALITIES = ("one_to_one", "one_to_many", "many_to_one")
ACTIONS = ("match", "suggest")
PASS_KEYS = {
    "name",
    "match_on",
    "amount_tolerance",
    "date_window_days",
    "description_min_similarity",
    "cardinality",
    "action",
}
MAX_PASSES = 20
FIELD_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


class _AnyField:
    """Accepts every well-formed extra field name (see validate_rules)."""

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and bool(FIELD_NAME.match(name))


ANY_FIELD: Collection[str] = _AnyField()  # type: ignore[assignment]
MAX_DATE_WINDOW = 3660
MAX_DECIMALS = 18
# Tolerances have the digit limits of amounts (DECIMAL(38, 18) at most): 20 before the point.
MAX_INTEGER_DIGITS = 38 - MAX_DECIMALS


@dataclass(frozen=True)
class PassSpec:
    """One validated pass."""

    name: str
    match_on: tuple[str, ...]
    absolute: Decimal | None
    relative: Decimal | None
    date_window: int | None
    min_similarity: float | None
    cardinality: str
    action: str

    @property
    def has_tolerance(self) -> bool:
        return self.absolute is not None or self.relative is not None


@dataclass(frozen=True)
class Rules:
    passes: tuple[PassSpec, ...]
    break_on: tuple[str, ...]

    @property
    def extra_fields(self) -> list[str]:
        """The non-canonical fields the rules compare, in first-use order."""
        used = [f for p in self.passes for f in p.match_on] + list(self.break_on)
        return list(dict.fromkeys(f for f in used if f not in FIELDS))

    @classmethod
    def from_normalised(cls, rules: dict[str, Any]) -> Rules:
        passes = []
        for p in rules["passes"]:
            tol = p.get("amount_tolerance") or {}
            passes.append(
                PassSpec(
                    name=p["name"],
                    match_on=tuple(p["match_on"]),
                    absolute=_dec_or_none(tol.get("absolute")),
                    relative=_dec_or_none(tol.get("relative")),
                    date_window=p.get("date_window_days"),
                    min_similarity=p.get("description_min_similarity"),
                    cardinality=p["cardinality"],
                    action=p["action"],
                )
            )
        return cls(passes=tuple(passes), break_on=tuple(rules["break_on"]))


def _dec_or_none(value: str | None) -> Decimal | None:
    return None if value is None else Decimal(value)


def _decimal(value: Any) -> Decimal | None:
    """Parse a tolerance given as string, int or float; None when it is not a number."""
    if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
        return None
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        value = repr(value)  # 0.01 stays 0.01, not its binary expansion
    try:
        result = Decimal(str(value).strip())
    except InvalidOperation:
        return None
    return result if result.is_finite() else None


def _decimals(value: Decimal) -> int:
    exponent = value.normalize().as_tuple().exponent
    return max(0, -int(exponent))


def _integer_digits(value: Decimal) -> int:
    return max(0, value.adjusted() + 1)


def _plain(value: Decimal) -> str:
    return format(value.normalize(), "f") if value else "0"


class _Problems:
    def __init__(self) -> None:
        self.items: list[dict[str, str]] = []

    def add(self, field: str, message: str) -> None:
        self.items.append({"field": field, "message": message})


def _known(extra: Collection[str]) -> str:
    named = sorted(extra) if isinstance(extra, list | tuple | set | frozenset) else []
    return ", ".join([*FIELDS, *named])


def _fields(
    value: Any, where: str, problems: _Problems, *, allow_empty: bool, extra: Collection[str]
) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        problems.add(where, f"must be a list of field names out of {_known(extra)}")
        return []
    if not value and not allow_empty:
        problems.add(where, f"needs at least one field to compare, out of {_known(extra)}")
    out: list[str] = []
    for i, name in enumerate(value):
        field = name.strip().lower()
        if field not in FIELDS and field not in extra:
            problems.add(f"{where}[{i}]", f"unknown field {name!r}; use one of {_known(extra)}")
        elif field in out:
            problems.add(f"{where}[{i}]", f"field {name!r} is listed twice")
        else:
            out.append(field)
    return out


def _tolerance(value: Any, where: str, problems: _Problems) -> dict[str, str] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        problems.add(where, "must be an object with 'absolute' and/or 'relative'")
        return None
    out: dict[str, str] = {}
    for extra in sorted(set(value) - {"absolute", "relative"}):
        problems.add(f"{where}.{extra}", "unknown setting; use 'absolute' or 'relative'")
    if "absolute" not in value and "relative" not in value:
        problems.add(where, "give 'absolute' and/or 'relative'")
    for part in ("absolute", "relative"):
        if part not in value or value[part] is None:
            continue
        number = _decimal(value[part])
        if number is None:
            problems.add(f"{where}.{part}", f"must be a decimal number, got {value[part]!r}")
        elif number < 0:
            problems.add(f"{where}.{part}", "must not be negative")
        elif _decimals(number) > MAX_DECIMALS:
            problems.add(f"{where}.{part}", f"at most {MAX_DECIMALS} decimals")
        elif _integer_digits(number) > MAX_INTEGER_DIGITS:
            problems.add(f"{where}.{part}", f"at most {MAX_INTEGER_DIGITS} digits before the point")
        elif part == "relative" and number > 1:
            problems.add(f"{where}.{part}", "is a fraction of the amount: between 0 and 1")
        else:
            out[part] = _plain(number)
    return out or None


def _int_setting(value: Any, where: str, low: int, high: int, problems: _Problems) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        problems.add(where, f"must be a whole number between {low} and {high}")
        return None
    if not low <= value <= high:
        problems.add(where, f"must be between {low} and {high}, got {value}")
        return None
    return value


def _similarity(value: Any, where: str, problems: _Problems) -> float | None:
    if value is None:
        return None
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if not ok or not math.isfinite(value) or not 0 <= value <= 100:
        problems.add(where, f"must be a number between 0 and 100, got {value!r}")
        return None
    return float(value)


def _choice(
    value: Any, default: str, allowed: tuple[str, ...], where: str, problems: _Problems
) -> str:
    if value is None:
        return default
    if value not in allowed:
        problems.add(where, f"unknown value {value!r}; use one of {', '.join(allowed)}")
        return default
    return str(value)


def _pass(
    raw: Any, i: int, names: set[str], problems: _Problems, extra: Collection[str]
) -> dict[str, Any] | None:
    where = f"passes[{i}]"
    if not isinstance(raw, dict):
        problems.add(where, "must be an object")
        return None
    for extra in sorted(set(raw) - PASS_KEYS, key=str):
        problems.add(f"{where}.{extra}", f"unknown setting; use {', '.join(sorted(PASS_KEYS))}")
    name = raw.get("name", f"pass_{i + 1}")
    if not isinstance(name, str) or not name.strip() or len(name.strip()) > 64:
        problems.add(f"{where}.name", "must be a non-empty name of at most 64 characters")
        name = f"pass_{i + 1}"
    name = name.strip()
    if name == "break":
        problems.add(f"{where}.name", "'break' is reserved for breaks")
    elif name in names:
        problems.add(f"{where}.name", f"duplicate pass name {name!r}")
    names.add(name)
    if "match_on" not in raw:
        problems.add(f"{where}.match_on", "is required: the fields that must be equal")
    match_on = _fields(
        raw.get("match_on", []), f"{where}.match_on", problems, allow_empty=False, extra=extra
    )
    tolerance = _tolerance(raw.get("amount_tolerance"), f"{where}.amount_tolerance", problems)
    window = _int_setting(
        raw.get("date_window_days"), f"{where}.date_window_days", 0, MAX_DATE_WINDOW, problems
    )
    similarity = _similarity(
        raw.get("description_min_similarity"), f"{where}.description_min_similarity", problems
    )
    cardinality = _choice(
        raw.get("cardinality"), "one_to_one", CARDINALITIES, f"{where}.cardinality", problems
    )
    action = _choice(raw.get("action"), "match", ACTIONS, f"{where}.action", problems)
    if "amount" in match_on and tolerance:
        problems.add(
            f"{where}.amount_tolerance",
            "amount is in match_on (exact equality), so a tolerance can not apply",
        )
    if cardinality != "one_to_one":
        if "amount" in match_on:
            problems.add(
                f"{where}.match_on", f"{cardinality} balances sums: amount can not be in match_on"
            )
        if similarity is not None:
            problems.add(
                f"{where}.description_min_similarity", f"not supported for {cardinality} passes"
            )
    return {
        "name": name,
        "match_on": match_on,
        "amount_tolerance": tolerance,
        "date_window_days": window,
        "description_min_similarity": similarity,
        "cardinality": cardinality,
        "action": action,
    }


def validate_rules(rules: Any, *, fields: Collection[str] = ()) -> dict[str, Any]:
    """Return the normalised rules, or raise RulesError listing every problem.

    ``fields`` are the extra field names the sources carry besides the canonical ones.
    """
    problems = _Problems()
    if not isinstance(rules, dict):
        raise RulesError([{"field": "rules", "message": "must be an object with 'passes'"}])
    for extra in sorted(set(rules) - {"passes", "break_on"}, key=str):
        problems.add(str(extra), "unknown setting; use 'passes' and 'break_on'")
    raw_passes = rules.get("passes")
    passes: list[dict[str, Any]] = []
    if not isinstance(raw_passes, list) or not raw_passes:
        problems.add("passes", "needs at least one pass")
    elif len(raw_passes) > MAX_PASSES:
        problems.add("passes", f"at most {MAX_PASSES} passes")
    else:
        names: set[str] = set()
        for i, raw in enumerate(raw_passes):
            parsed = _pass(raw, i, names, problems, fields)
            if parsed is not None:
                passes.append(parsed)
    break_on = _fields(
        rules.get("break_on", ["key"]), "break_on", problems, allow_empty=True, extra=fields
    )
    if problems.items:
        raise RulesError(problems.items)
    return {"passes": passes, "break_on": break_on}
