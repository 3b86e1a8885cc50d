"""Assignment: which candidate pairs (or groups) become matches.

One-to-one is the greedy assignment over a strict total order: walk the
candidate pairs best first and keep a pair when neither record is taken yet.
That equals the result of repeatedly keeping every pair that is the best
remaining pair of both of its records ("locally dominant") and removing
their records, which is a few set-based rounds instead of a row loop. Pairs
whose two records have no other candidate settle before any sorting; once
the ambiguous rest is small it is finished by the plain greedy walk.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import duckdb
import numpy as np
import pyarrow as pa

from recon.engine.positions import arrow

_ids = itertools.count()


def _name(prefix: str) -> str:
    return f"{prefix}_{next(_ids)}"


def assign_one_to_one(
    con: duckdb.DuckDBPyConnection,
    cand: str,
    order_by: str,
    *,
    python_threshold: int = 20_000,
) -> str:
    """Return the name of a new table holding the rows of cand the greedy order keeps.

    ``cand`` has columns lrow, rrow and whatever ``order_by`` (a strict total
    order, best first, ending in lrow, rrow) refers to.
    """
    out, amb, acc = _name("acc_pairs"), _name("amb"), _name("round")
    con.execute(
        f"""CREATE TEMP TABLE {out} AS SELECT c.* FROM {cand} c
            SEMI JOIN (SELECT lrow FROM {cand} GROUP BY lrow HAVING count(*) = 1) ul
                ON c.lrow = ul.lrow
            SEMI JOIN (SELECT rrow FROM {cand} GROUP BY rrow HAVING count(*) = 1) ur
                ON c.rrow = ur.rrow"""  # noqa: S608
    )
    # A settled pair's records have no other candidate, so excluding its lrow suffices.
    con.execute(
        f"""CREATE TEMP TABLE {amb} AS
            SELECT lrow, rrow, row_number() OVER (ORDER BY {order_by}) AS rk
            FROM {cand} c ANTI JOIN {out} o ON c.lrow = o.lrow"""  # noqa: S608
    )
    while True:
        remaining = _count(con, amb)
        if remaining == 0:
            break
        if remaining <= python_threshold:
            _greedy_walk(con, amb, acc)
            _keep(con, cand, acc, out)
            break
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE {acc} AS SELECT a.lrow, a.rrow FROM {amb} a
                JOIN (SELECT lrow, min(rk) AS m FROM {amb} GROUP BY lrow) bl
                    ON a.lrow = bl.lrow AND a.rk = bl.m
                JOIN (SELECT rrow, min(rk) AS m FROM {amb} GROUP BY rrow) br
                    ON a.rrow = br.rrow AND a.rk = br.m"""  # noqa: S608
        )
        _keep(con, cand, acc, out)
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE {amb} AS SELECT a.* FROM {amb} a
                ANTI JOIN {acc} x ON a.lrow = x.lrow
                ANTI JOIN {acc} y ON a.rrow = y.rrow"""  # noqa: S608
        )
    con.execute(f"DROP TABLE IF EXISTS {amb}")
    con.execute(f"DROP TABLE IF EXISTS {acc}")
    return out


def _count(con: duckdb.DuckDBPyConnection, table: str) -> int:
    row = con.execute(f"SELECT count(*) FROM {table}").fetchone()  # noqa: S608
    return int(row[0]) if row else 0


def _keep(con: duckdb.DuckDBPyConnection, cand: str, acc: str, out: str) -> None:
    con.execute(
        f"""INSERT INTO {out} SELECT c.* FROM {cand} c
            SEMI JOIN {acc} a ON c.lrow = a.lrow AND c.rrow = a.rrow"""  # noqa: S608
    )


def _greedy_walk(con: duckdb.DuckDBPyConnection, amb: str, acc: str) -> None:
    """The plain greedy walk over the ranked pairs, into a new table acc (lrow, rrow)."""
    pairs = con.execute(f"SELECT lrow, rrow FROM {amb} ORDER BY rk").fetchall()  # noqa: S608
    used_l: set[int] = set()
    used_r: set[int] = set()
    kept: list[tuple[int, int]] = []
    for lrow, rrow in pairs:
        if lrow not in used_l and rrow not in used_r:
            used_l.add(lrow)
            used_r.add(rrow)
            kept.append((lrow, rrow))
    con.execute(f"CREATE OR REPLACE TEMP TABLE {acc} (lrow BIGINT, rrow BIGINT)")
    if kept:
        pairs_array = np.array(kept, dtype=np.int64)
        con.register(
            "greedy_kept",
            pa.table(
                {
                    "lrow": arrow(np.ascontiguousarray(pairs_array[:, 0]), pa.int64()),
                    "rrow": arrow(np.ascontiguousarray(pairs_array[:, 1]), pa.int64()),
                }
            ),
        )
        con.execute(f"INSERT INTO {acc} SELECT lrow, rrow FROM greedy_kept")  # noqa: S608
        con.unregister("greedy_kept")


def assign_groups(
    con: duckdb.DuckDBPyConnection,
    members: str,
    groups_sql: Callable[[str], str],
    order_by: str,
) -> str:
    """Return a table (orow, mrow) of the members of the groups kept; a record joins one group.

    ``members`` (orow, mrow, ...) lists, for each record of the "one" side,
    the still-unmatched records of the "many" side it may group with.
    ``groups_sql`` turns the name of a members table into a query of the
    groups that balance, one row per ``orow``; ``order_by`` ranks them.
    Each round keeps every balancing group that is the best group of all its
    members, then drops the kept records and recomputes the groups of the
    others from their remaining members, until no group balances. The best
    balancing group is always kept, so every round makes progress.
    """
    work, kept, ranked, won = _name("gwork"), _name("gkept"), _name("granked"), _name("gwon")
    con.execute(f"CREATE TEMP TABLE {work} AS SELECT orow, mrow FROM {members}")  # noqa: S608
    con.execute(f"CREATE TEMP TABLE {kept} (orow BIGINT, mrow BIGINT)")
    while _count(con, work):
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE {ranked} AS
                SELECT g.orow, row_number() OVER (ORDER BY {order_by}) AS rk
                FROM ({groups_sql(work)}) g"""  # noqa: S608
        )
        # A group wins when no member of it belongs to a better balancing group.
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE {won} AS SELECT g.orow FROM {ranked} g
                JOIN (SELECT w.orow, min(best.rk) AS m FROM {work} w JOIN (
                        SELECT w2.mrow, min(r.rk) AS rk FROM {work} w2
                        JOIN {ranked} r ON w2.orow = r.orow GROUP BY w2.mrow
                      ) best ON w.mrow = best.mrow
                      GROUP BY w.orow) b
                ON g.orow = b.orow AND g.rk = b.m"""  # noqa: S608
        )
        if _count(con, won) == 0:
            break
        con.execute(
            f"INSERT INTO {kept} SELECT w.orow, w.mrow FROM {work} w SEMI JOIN {won} x "  # noqa: S608
            "ON w.orow = x.orow"
        )
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE {work} AS SELECT w.* FROM {work} w
                ANTI JOIN {kept} a ON w.orow = a.orow
                ANTI JOIN {kept} b ON w.mrow = b.mrow"""  # noqa: S608
        )
    for table in (work, ranked, won):
        con.execute(f"DROP TABLE IF EXISTS {table}")
    return kept
