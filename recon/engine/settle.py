"""Settling, in one join, the pairs whose key appears once on each side.

The leading passes that are one_to_one with the key in ``match_on`` (and no
description similarity, which needs rapidfuzz per pair) only ever pair records
that share their key, and so do breaks when ``break_on`` includes the key. A
record whose normalised key appears exactly once on each side therefore has
one possible counterpart in all of them; that pair is the only candidate of
both its records, so the greedy assignment keeps it in the first of those
passes whose conditions it meets, and pairs it as a break when no pass takes
it and neither record went to a later pass. In the usual reconciliation that
is nearly every record: one join evaluates each leading pass's conditions as
columns, and the passes themselves only run on the records whose key repeats.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from recon.engine.load import Side, needs_descriptions
from recon.engine.rules import PassSpec, Rules
from recon.engine.sql import (
    allowed_sql,
    amount_must_equal,
    confidence_sql,
    diff_mask_sql,
    equality_columns,
    join_on,
    pair_filters,
    rule_column,
)

PAIRS = "unique_pairs"
REPEATED = "repeated_keys"


@dataclass(frozen=True)
class PassCounts:
    """One leading pass's share of the unique-key pairs: estimate, candidates, matches."""

    estimate: int
    candidates: int
    matches: int


@dataclass(frozen=True)
class Settled:
    """The unique-key pairs (table ``PAIRS``) and what each leading pass did with them."""

    leading: int
    counts: tuple[PassCounts, ...]
    breaks: bool  # break_on includes the key, so the unmatched pairs here are the breaks


def leading_passes(rules: Rules) -> int:
    """How many passes, from the first, can settle the unique-key pairs in one join."""
    count = 0
    for p in rules.passes:
        if p.cardinality != "one_to_one" or "key" not in p.match_on or p.min_similarity is not None:
            break
        count += 1
    return count


def worth_settling(rules: Rules) -> bool:
    return leading_passes(rules) > 0 or "key" in rules.break_on


def _equal_beyond_key(p: PassSpec) -> str:
    """The pass's equalities other than the key's, as SQL ('true' when there are none)."""
    return join_on([c for c in equality_columns(p) if c != "k"]) or "true"


def _confidence(p: PassSpec, scale: int) -> str:
    allowed = None if amount_must_equal(p) else allowed_sql(p, "la", "ra", scale)
    return confidence_sql(p, diff="diff", allowed=allowed, days="ddays", similarity=None)


def settle_unique_keys(
    con: duckdb.DuckDBPyConnection, rules: Rules, sides: tuple[Side, Side], scale: int
) -> Settled:
    """Create ``PAIRS`` (lrow, rrow, diff, ddays, dm, pidx, conf, brk) and ``REPEATED`` (k).

    ``pidx`` is the leading pass that matches the pair (NULL when none does);
    ``brk`` whether the pair agrees on every ``break_on`` field; ``dm`` the
    difference mask (sql.diff_mask_sql) of the pairs no leading pass matched
    and that agree on break_on, so breaks among them need not join the sources again.
    """
    left, right = sides
    lead = list(rules.passes[: leading_passes(rules)])
    con.execute(
        f"""CREATE TEMP TABLE {REPEATED} AS SELECT k FROM {left.duplicates}
            UNION SELECT k FROM {right.duplicates}"""  # noqa: S608
    )
    # Every pair shares its key (the join's, never NULL), so k = k is left out.
    equal = [_equal_beyond_key(p) for p in lead]
    conditions = [
        " AND ".join(f"({c})" for c in [e, *pair_filters(p, scale)])
        for p, e in zip(lead, equal, strict=True)
    ]
    flags = "".join(
        f", coalesce({e}, false) AS e{i}, coalesce({c}, false) AS c{i}"
        for i, (e, c) in enumerate(zip(equal, conditions, strict=True))
    )
    # Index i is the pass's position, which is also its code in the recon_pass ENUM.
    pidx = " ".join(f"WHEN c{i} THEN {i}" for i in range(len(lead)))
    pidx = f"CASE {pidx} END" if lead else "NULL"
    brk = "false"
    if "key" in rules.break_on:
        brk = join_on([rule_column(f) for f in rules.break_on if f != "key"]) or "true"
    conf = " ".join(f"WHEN {i} THEN {_confidence(p, scale)}" for i, p in enumerate(lead))
    conf = f"CASE pidx {conf} END" if lead else "NULL"
    kept = "".join(f", e{i}, c{i}" for i in range(len(lead)))
    # The pair shares its key (the join's); descriptions only when the sides hold them.
    compared = {"amount": ("la", "ra"), "date": ("ld", "rd"), "currency": ("lc", "rc")}
    carried = "l.d AS ld, r.d AS rd, l.ccy AS lc, r.ccy AS rc"
    if needs_descriptions(rules)[1]:
        compared["description"] = ("ln", "rn")
        carried += ", l.nd AS ln, r.nd AS rn"
    # Only the pairs that can end as breaks need the mask (a CASE evaluates just those).
    mask = f"CASE WHEN pidx IS NULL AND brk THEN {diff_mask_sql(compared)} END"
    con.execute(
        f"""CREATE TABLE {PAIRS} AS
            SELECT lrow, rrow, diff, ddays, {mask} AS dm, pidx, CAST({conf} AS DOUBLE) AS conf,
                   brk {kept}
            FROM (SELECT *, CAST({pidx} AS UTINYINT) AS pidx
                  FROM (SELECT l.row AS lrow, r.row AS rrow, l.amt AS la, r.amt AS ra,
                               l.amt - r.amt AS diff, l.d - r.d AS ddays,
                               {carried},
                               coalesce({brk}, false) AS brk {flags}
                        FROM (FROM {left.table} ANTI JOIN {REPEATED} USING (k)) l
                        JOIN (FROM {right.table} ANTI JOIN {REPEATED} USING (k)) r
                        ON l.k = r.k))"""  # noqa: S608
    )
    counts = []
    if lead:
        # A pair is still offered to pass i when no earlier pass matched it.
        open_at = [f"(pidx IS NULL OR pidx >= {i})" for i in range(len(lead))]
        parts = ", ".join(
            f"count(*) FILTER ({o} AND e{i}), count(*) FILTER ({o} AND c{i}), "
            f"count(*) FILTER (pidx = {i})"
            for i, o in enumerate(open_at)
        )
        row = con.execute(f"SELECT {parts} FROM {PAIRS}").fetchone()  # noqa: S608
        values = [int(v) for v in row] if row else [0] * (3 * len(lead))
        counts = [PassCounts(*values[3 * i : 3 * i + 3]) for i in range(len(lead))]
    return Settled(leading=len(lead), counts=tuple(counts), breaks="key" in rules.break_on)


def matched_pairs_sql(side: str, suggest: list[int]) -> str:
    """The unique-key records the leading passes matched, as (row, status and pass codes...)."""
    row = "lrow" if side == "left" else "rrow"
    status = (
        f"CASE WHEN pidx IN ({', '.join(map(str, suggest))}) THEN 1 ELSE 0 END" if suggest else "0"
    )
    return f"""SELECT {row} AS "row", CAST({status} AS UTINYINT) AS status_code,
               pidx AS pass_code, lrow AS match_id, conf AS confidence, diff AS amount_diff,
               CAST(ddays AS INTEGER) AS date_diff_days, CAST(NULL AS VARCHAR) AS diff_fields
               FROM {PAIRS} WHERE pidx IS NOT NULL"""  # noqa: S608


def break_pairs_sql(taken: list[str]) -> str:
    """The unique-key pairs that end as breaks (lrow, rrow, diff, ddays, dm).

    No pass matched either record of such a pair.

    ``taken`` lists record tables of passes after the leading ones; a pair one
    of whose records such a pass matched is no break (the other record has no
    other counterpart, so it stays unmatched).
    """
    sql = f"SELECT lrow, rrow, diff, ddays, dm FROM {PAIRS} p WHERE pidx IS NULL AND brk"  # noqa: S608
    for table in taken:
        for side, column in (("left", "lrow"), ("right", "rrow")):
            sql += f" AND p.{column} NOT IN (SELECT row FROM {table} WHERE side = '{side}')"  # noqa: S608
    return sql
