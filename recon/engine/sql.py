"""SQL fragments shared by the passes and the breaks: equality, tolerance, confidence.

The engine assembles SQL from its own table names, canonical column names and
validated numbers only (tolerances are parsed Decimals, windows ints); user
text such as pass names is always bound as a parameter. That is why the
S608 warnings in recon/engine carry a noqa.
"""

from __future__ import annotations

from decimal import Decimal

import duckdb

from recon.engine.errors import EngineError
from recon.engine.rules import PassSpec

COLUMN = {"key": "k", "amount": "amt", "date": "d", "currency": "ccy", "description": "nd"}
# An extra field (a source's mapping.fields, validated as [a-z][a-z0-9_]*) is loaded as
# this column, normalised like the key.
EXTRA_PREFIX = "f_"


def rule_column(field: str) -> str:
    """The side-table column a rule field is compared on (``k``, ``amt``, ``f_batch`` ...)."""
    return COLUMN.get(field) or EXTRA_PREFIX + field


CURRENCY_GUARD = "(l.ccy IS NULL OR r.ccy IS NULL OR l.ccy = r.ccy)"


def amount_must_equal(p: PassSpec) -> bool:
    """True when the pass allows no amount difference (no tolerance, or tolerance zero)."""
    return "amount" in p.match_on or not (p.absolute or p.relative)


def equality_columns(p: PassSpec, *, group: bool = False) -> list[str]:
    """Columns compared with '=' (hash-join keys): match_on, plus exact amount or date."""
    cols = [rule_column(f) for f in p.match_on]
    if not group and amount_must_equal(p) and "amt" not in cols:
        cols.append("amt")
    if p.date_window == 0 and "d" not in cols:
        cols.append("d")
    return cols


def join_on(cols: list[str], left: str = "l", right: str = "r") -> str:
    return " AND ".join(f"{left}.{c} = {right}.{c}" for c in cols)


def _literal(value: Decimal, scale: int) -> str:
    return f"CAST('{format(value, 'f')}' AS DECIMAL(38, {scale}))"


def _relative_sql(relative: Decimal, a: str, b: str) -> str:
    rel_scale = max(0, -int(relative.normalize().as_tuple().exponent))
    rel = f"CAST('{format(relative, 'f')}' AS DECIMAL(18, {rel_scale}))"
    return f"({rel} * greatest(abs({a}), abs({b})))"


def allowed_sql(p: PassSpec, a: str, b: str, scale: int) -> str:
    """The largest amount difference the pass allows between amounts a and b."""
    parts = []
    if p.absolute is not None:
        parts.append(_literal(p.absolute, scale))
    if p.relative is not None:
        parts.append(_relative_sql(p.relative, a, b))
    if not parts:
        return _literal(Decimal(0), scale)
    return parts[0] if len(parts) == 1 else f"greatest({', '.join(parts)})"


def tolerance_sql(p: PassSpec, a: str, b: str, scale: int) -> str:
    """Condition: |a-b| <= absolute OR |a-b| <= relative * max(|a|,|b|); equality when none.

    Written as an OR rather than against allowed_sql's greatest(): the same
    truth, but the relative bound (a 128-bit multiplication) is then only
    computed for the pairs the absolute bound does not already accept.
    """
    if amount_must_equal(p):
        return f"{a} = {b}"
    parts = []
    if p.absolute is not None:
        parts.append(f"abs({a} - {b}) <= {_literal(p.absolute, scale)}")
    if p.relative is not None:
        parts.append(f"abs({a} - {b}) <= {_relative_sql(p.relative, a, b)}")
    return "(" + " OR ".join(parts) + ")"


def window_sql(p: PassSpec) -> str | None:
    if p.date_window is None or p.date_window == 0:
        return None  # 0 is an equality, already a hash-join key
    return f"abs(l.d - r.d) <= {p.date_window}"


def pair_filters(p: PassSpec, scale: int) -> list[str]:
    """The conditions besides the hash-join equalities a pair (l, r) meets in one_to_one pass p."""
    filters = [CURRENCY_GUARD, tolerance_sql(p, "l.amt", "r.amt", scale)]
    window = window_sql(p)
    if window:
        filters.append(window)
    return filters


def confidence_sql(
    p: PassSpec, *, diff: str, allowed: str | None, days: str, similarity: str | None
) -> str:
    """Mean of the compared components, 0-100 rounded to 2 decimals (deterministic)."""
    parts = [
        f"CASE WHEN {diff} = 0 THEN 1.0 ELSE 1.0 - abs({diff}) / NULLIF({allowed}, 0) END"
        if allowed is not None
        else "1.0"
    ]
    if p.date_window is not None:
        parts.append(f"(1.0 - abs({days}) / {p.date_window + 1}.0)")
    if p.min_similarity is not None and similarity is not None:
        parts.append(f"({similarity} / 100.0)")
    mean = " + ".join(f"CAST({x} AS DOUBLE)" for x in parts)
    return f"round(100.0 * ({mean}) / {len(parts)}, 2)"


def estimate_pairs(con: duckdb.DuckDBPyConnection, cols: list[str], left: str, right: str) -> int:
    """Upper bound of the candidate pairs of a hash join on cols, without building them.

    Grouping by one hash of the columns is much cheaper than by the columns,
    and stays an upper bound: a collision merges groups, and (a+b)(c+d) >= ac+bd.
    """
    keys = ", ".join(cols)
    not_null = " AND ".join(f"{c} IS NOT NULL" for c in cols)
    row = con.execute(
        f"""SELECT CAST(coalesce(sum(CAST(a.n AS HUGEINT) * b.n), 0) AS HUGEINT)
            FROM (SELECT hash({keys}) AS h, count(*) AS n FROM {left} WHERE {not_null}
                  GROUP BY h) a
            JOIN (SELECT hash({keys}) AS h, count(*) AS n FROM {right} WHERE {not_null}
                  GROUP BY h) b
            ON a.h = b.h"""  # noqa: S608
    ).fetchone()
    return int(row[0]) if row else 0


def check_estimate(name: str, estimate: int, max_candidates: int) -> None:
    if estimate > max_candidates:
        raise EngineError(
            f"pass {name!r} would compare about {estimate:,} candidate pairs, more than the "
            f"limit of {max_candidates:,}; add a field to match_on or narrow the date window",
            code="too_many_candidates",
            pass_name=name,
            estimate=estimate,
            limit=max_candidates,
        )


# A break's diff_fields, in this order; bit i of a pair's difference mask is field i.
DIFF_FIELDS = ("key", "amount", "date", "currency", "description")


def diff_mask_sql(pairs: dict[str, tuple[str, str]]) -> str:
    """A UTINYINT with bit i set when DIFF_FIELDS[i]'s two values (given in pairs) differ.

    Fields absent from pairs are known equal for the pairs it is computed on.
    """
    bits = [
        f"CAST(({a} IS DISTINCT FROM {b}) AS UTINYINT) * {1 << i}"
        for i, name in enumerate(DIFF_FIELDS)
        if name in pairs
        for a, b in [pairs[name]]
    ]
    return f"CAST({' + '.join(bits) if bits else '0'} AS UTINYINT)"


def diff_fields_sql(mask: str) -> str:
    """The comma-separated diff_fields of a difference mask ('' when none differ)."""
    arms = ", ".join(
        f"CASE WHEN {mask} & {1 << i} <> 0 THEN '{name}' END" for i, name in enumerate(DIFF_FIELDS)
    )
    return f"concat_ws(',', {arms})"
