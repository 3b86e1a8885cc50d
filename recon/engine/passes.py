"""Running one pass: candidates from hash joins, filters, assignment, records.

Every pass reads the two pools (records not matched by earlier passes) and
writes its matches to a new table ``out``, one row per record:
``side, row, status, pass, match_id, confidence, amount_diff,
date_diff_days, diff_fields``. ``amount_diff`` is left minus right (sums for
a group) and ``date_diff_days`` left date minus right date, on every record
of the match; ``match_id`` is the lowest left row of the match.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import numpy as np
import pyarrow as pa

from recon.engine.assign import assign_groups, assign_one_to_one
from recon.engine.positions import arrow
from recon.engine.results import record_columns
from recon.engine.rules import PassSpec
from recon.engine.settle import PassCounts
from recon.engine.sql import (
    CURRENCY_GUARD,
    allowed_sql,
    amount_must_equal,
    check_estimate,
    confidence_sql,
    equality_columns,
    estimate_pairs,
    join_on,
    pair_filters,
    tolerance_sql,
    window_sql,
)

PAIR_ORDER = "conf DESC, abs(diff), abs(ddays) NULLS LAST, lrow, rrow"
SIMILARITY_BATCH = 200_000


@dataclass
class PassResult:
    """What one pass did: its estimate, candidates and the records it matched per side."""

    estimate: int
    candidates: int
    matches: int
    left_rows: int
    right_rows: int


def _count(con: duckdb.DuckDBPyConnection, sql: str) -> int:
    row = con.execute(f"SELECT count(*) FROM {sql}").fetchone()  # noqa: S608
    return int(row[0]) if row else 0


def _normalise_text(value: str | None) -> str:
    return " ".join(value.split()).casefold() if value else ""


def _similarities(con: duckdb.DuckDBPyConnection, cand: str, threads: int | None) -> pa.Table:
    """token_set_ratio of the normalised descriptions of every (already filtered) pair."""
    from rapidfuzz import fuzz, process  # imported here: numpy is only needed by this path

    lrows: list[pa.Array] = []
    rrows: list[pa.Array] = []
    sims: list[pa.Array] = []
    reader = con.sql(f"SELECT lrow, rrow, ldesc, rdesc FROM {cand}").to_arrow_reader(  # noqa: S608
        SIMILARITY_BATCH
    )
    for batch in reader:
        left = [_normalise_text(x) for x in batch.column(2).to_pylist()]
        right = [_normalise_text(x) for x in batch.column(3).to_pylist()]
        scores = process.cpdist(
            left, right, scorer=fuzz.token_set_ratio, processor=None, workers=threads or 1
        )
        lrows.append(batch.column(0))
        rrows.append(batch.column(1))
        sims.append(arrow(np.ascontiguousarray(scores, dtype=np.float64).ravel(), pa.float64()))
    return pa.table(
        {
            "lrow": pa.chunked_array(lrows, pa.int64()),
            "rrow": pa.chunked_array(rrows, pa.int64()),
            "sim": pa.chunked_array(sims, pa.float64()),
        }
    )


def run_pair_pass(
    con: duckdb.DuckDBPyConnection,
    p: PassSpec,
    left: str,
    right: str,
    *,
    scale: int,
    max_candidates: int,
    threads: int | None,
    out: str,
    settled: PassCounts | None = None,
) -> PassResult:
    """A one_to_one pass: greedy assignment over the total order of the candidates.

    ``settled`` is the pass's share of the unique-key pairs settle.py already
    decided; the pools then hold only the other records, and the counts add up.
    """
    known = settled or PassCounts(0, 0, 0)
    cols = equality_columns(p)
    estimate = estimate_pairs(con, cols, left, right) + known.estimate
    check_estimate(p.name, estimate, max_candidates)
    tolerant = not amount_must_equal(p)
    allowed = allowed_sql(p, "l.amt", "r.amt", scale) if tolerant else None
    filters = pair_filters(p, scale)
    similar = p.min_similarity is not None
    extra = ", l.descr AS ldesc, r.descr AS rdesc" if similar else ""
    extra += f", {allowed} AS allowed" if tolerant else ""
    conf = confidence_sql(
        p,
        diff="diff",
        allowed="allowed" if tolerant else None,
        days="ddays",
        similarity="sim",
    )
    base = f"""SELECT l.row AS lrow, r.row AS rrow, l.amt - r.amt AS diff,
               l.d - r.d AS ddays {extra}
               FROM {left} l JOIN {right} r ON {join_on(cols)}
               WHERE {" AND ".join(filters)}"""  # noqa: S608
    if similar:
        con.execute(f"CREATE OR REPLACE TEMP TABLE cand_raw AS {base}")
        sims = _similarities(con, "cand_raw", threads)
        con.register("cand_sims", sims)
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE cand AS SELECT c.*, s.sim, {conf} AS conf
                FROM cand_raw c JOIN cand_sims s ON c.lrow = s.lrow AND c.rrow = s.rrow
                WHERE s.sim >= {p.min_similarity}"""  # noqa: S608
        )
        con.unregister("cand_sims")
        con.execute("DROP TABLE cand_raw")
    else:
        con.execute(f"CREATE OR REPLACE TEMP TABLE cand AS SELECT *, {conf} AS conf FROM ({base})")  # noqa: S608
    candidates = _count(con, "cand")
    kept = assign_one_to_one(con, "cand", PAIR_ORDER)
    status = "suggested" if p.action == "suggest" else "matched"
    con.execute(
        f"""CREATE TABLE {out} AS
            SELECT 'left' AS side, lrow AS "row", {record_columns("lrow", "conf", "diff", "ddays")}
            FROM {kept}
            UNION ALL
            SELECT 'right', rrow, {record_columns("lrow", "conf", "diff", "ddays")} FROM {kept}""",  # noqa: S608
        [status, p.name, status, p.name],
    )
    matches = _count(con, kept) + known.matches
    con.execute(f"DROP TABLE {kept}")
    con.execute("DROP TABLE cand")
    return PassResult(estimate, candidates + known.candidates, matches, matches, matches)


def run_group_pass(
    con: duckdb.DuckDBPyConnection,
    p: PassSpec,
    left: str,
    right: str,
    *,
    scale: int,
    max_candidates: int,
    out: str,
) -> PassResult:
    """A one_to_many / many_to_one pass: a record matches its many-side peers when they sum up."""
    one_is_left = p.cardinality == "one_to_many"
    one, many = (left, right) if one_is_left else (right, left)
    o_alias, m_alias = ("l", "r") if one_is_left else ("r", "l")
    cols = equality_columns(p, group=True)
    estimate = estimate_pairs(con, cols, left, right)
    check_estimate(p.name, estimate, max_candidates)
    filters = [CURRENCY_GUARD]
    window = window_sql(p)
    if window:
        filters.append(window)
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE gcand AS
            SELECT {o_alias}.row AS orow, {m_alias}.row AS mrow, l.d - r.d AS ddays
            FROM {left} l JOIN {right} r ON {join_on(cols)}
            WHERE {" AND ".join(filters)}"""  # noqa: S608
    )
    candidates = _count(con, "gcand")
    # diff is left minus right: the one side's amount against the many side's sum.
    diff = "o_amt - s" if one_is_left else "s - o_amt"
    allowed = None if amount_must_equal(p) else allowed_sql(p, "o_amt", "s", scale)
    conf = confidence_sql(p, diff=diff, allowed=allowed, days="maxdays", similarity=None)

    def stats(members: str) -> str:
        return f"""SELECT w.orow, any_value(o.amt) AS o_amt, sum(m.amt) AS s,
                       max(abs(g.ddays)) AS maxdays,
                       arg_max(g.ddays, abs(g.ddays) * 2 + CAST(g.ddays > 0 AS INTEGER)) AS dsel,
                       min(w.mrow) AS min_mrow,
                       count(DISTINCT m.ccy) AS n_ccy
                   FROM {members} w
                   JOIN gcand g ON w.orow = g.orow AND w.mrow = g.mrow
                   JOIN {one} o ON o.row = w.orow JOIN {many} m ON m.row = w.mrow
                   GROUP BY w.orow"""  # noqa: S608

    def balancing(members: str) -> str:
        return f"""SELECT orow, {conf} AS conf, abs({diff}) AS adiff, maxdays
                   FROM ({stats(members)})
                   WHERE n_ccy <= 1 AND {tolerance_sql(p, "o_amt", "s", scale)}"""  # noqa: S608

    kept = assign_groups(con, "gcand", balancing, "conf DESC, adiff, maxdays NULLS LAST, orow")
    status = "suggested" if p.action == "suggest" else "matched"
    match_id = "st.orow" if one_is_left else "st.min_mrow"
    o_side, m_side = ("left", "right") if one_is_left else ("right", "left")
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE gstats AS
            SELECT st.orow, {match_id} AS match_id, {conf} AS conf, {diff} AS diff, st.dsel
            FROM ({stats(kept)}) st"""  # noqa: S608
    )
    con.execute(
        f"""CREATE TABLE {out} AS
            SELECT '{o_side}' AS side, st.orow AS "row",
                   {record_columns("st.match_id", "st.conf", "st.diff", "st.dsel")}
            FROM gstats st
            UNION ALL
            SELECT '{m_side}', k.mrow,
                   {record_columns("st.match_id", "st.conf", "st.diff", "g.ddays")}
            FROM {kept} k JOIN gstats st ON k.orow = st.orow
            JOIN gcand g ON g.orow = k.orow AND g.mrow = k.mrow""",  # noqa: S608
        [status, p.name, status, p.name],
    )
    matches = _count(con, "gstats")
    members = _count(con, kept)
    for table in (kept, "gstats", "gcand"):
        con.execute(f"DROP TABLE {table}")
    left_rows, right_rows = (matches, members) if one_is_left else (members, matches)
    return PassResult(estimate, candidates, matches, left_rows, right_rows)
