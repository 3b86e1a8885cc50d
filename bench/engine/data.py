"""Seeded benchmark data: two CSV files that should mostly agree.

Two recipes, each with its rules:

``four_pass`` (the default; the recipe of issue 16). Every left record i has
key K<i> and a description ``payment <n>``. Its counterpart on the right
depends on a seeded hash of i: 60 % identical, 10 % amount off by 0.01 and
5 % date two days later (both inside the tolerant pass), 5 % amount 50 %
higher (a break), 5 % under another key with the same amount, the date a day
later and the description upper-cased with a suffix (found by the amount +
date + description suggestion pass), 5 % split into two right records under
the same key whose amounts add up (the one-to-many pass), 10 % missing (the
right gets an unrelated record with key R<i> and its own amount, date and
description instead). One left record in a
hundred repeats the previous key (a duplicate), so about 1M x 1.05M records
for 1M entities.

``two_pass`` (the previous default): 70 % identical, 10 % amount +0.01, 5 %
date +2 days, 5 % breaks, 10 % missing; exact and tolerant passes plus breaks.

The right file is written in a shuffled order. DuckDB generates both, so 10M
rows take seconds. Amounts are exact cents (DECIMAL(18, 2)): a DECIMAL divided by an
INTEGER is a DOUBLE in DuckDB, which once wrote amounts with 11 to 16 decimals.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb

FOUR_PASS_RULES: dict[str, Any] = {
    "passes": [
        {
            "name": "exact",
            "match_on": ["key"],
            "amount_tolerance": {"absolute": "0"},
            "date_window_days": 0,
        },
        {
            "name": "tolerant",
            "match_on": ["key"],
            "amount_tolerance": {"absolute": "0.01", "relative": "0.005"},
            "date_window_days": 3,
        },
        {
            "name": "amount_date",
            "match_on": ["amount"],
            "date_window_days": 2,
            "description_min_similarity": 80,
            "action": "suggest",
        },
        {
            "name": "batched",
            "match_on": ["key"],
            "cardinality": "one_to_many",
            "amount_tolerance": {"absolute": "0.01"},
        },
    ],
    "break_on": ["key"],
}
TWO_PASS_RULES: dict[str, Any] = {
    "passes": FOUR_PASS_RULES["passes"][:1]
    + [
        {
            "name": "tolerant",
            "match_on": ["key"],
            "amount_tolerance": {"absolute": "0.01", "relative": "0.001"},
            "date_window_days": 3,
        }
    ],
    "break_on": ["key"],
}
RECIPES: dict[str, dict[str, Any]] = {
    "four_pass": {"rules": FOUR_PASS_RULES, "abs_tol": 0.01, "rel_tol": 0.005},
    "two_pass": {"rules": TWO_PASS_RULES, "abs_tol": 0.01, "rel_tol": 0.001},
}


def _base(con: duckdb.DuckDBPyConnection, rows: int, seed: int) -> None:
    con.execute(
        f"""CREATE TABLE base AS SELECT i,
              hash(i, {seed}, 1) % 100 AS cat,
              CAST(hash(i, {seed}, 2) % 10000000 AS DECIMAL(18, 0)) * 0.01 + 1 AS amount,
              DATE '2024-01-01' + CAST(hash(i, {seed}, 3) % 365 AS INTEGER) AS date,
              ['USD', 'EUR', 'GBP'][1 + CAST(hash(i, {seed}, 4) % 3 AS INTEGER)] AS currency,
              'payment ' || CAST(hash(i, {seed}, 5) % 100000 AS VARCHAR) AS description,
              hash(i, {seed}, 6) % 100 = 0 AND i > 0 AS dup
            FROM range({rows}) t(i)"""  # noqa: S608
    )


def _write_left(con: duckdb.DuckDBPyConnection, left: Path) -> None:
    con.execute(
        f"""COPY (SELECT 'K' || lpad(CAST(CASE WHEN dup THEN i - 1 ELSE i END AS VARCHAR), 10, '0')
                  AS id, amount, strftime(date, '%Y-%m-%d') AS date, currency, description
                  FROM base ORDER BY i)
            TO '{left}' (HEADER, DELIMITER ',')"""  # noqa: S608
    )


def _right_two_pass(seed: int) -> str:
    return f"""SELECT CASE WHEN cat >= 90 THEN 'R' ELSE 'K' END
                      || lpad(CAST(i AS VARCHAR), 10, '0') AS id,
               CASE WHEN cat BETWEEN 70 AND 79 THEN amount + 0.01
                    WHEN cat BETWEEN 85 AND 89 THEN amount * 1.5
                    ELSE amount END :: DECIMAL(18, 2) AS amount,
               strftime(CASE WHEN cat BETWEEN 80 AND 84 THEN date + 2 ELSE date END,
                        '%Y-%m-%d') AS date,
               currency, description, hash(i, {seed}, 7) AS shuffle
               FROM base"""  # noqa: S608


def _right_four_pass(seed: int) -> str:
    # cat: 0-59 identical, 60-69 +0.01, 70-74 date +2, 75-79 break, 80-84 other key
    # (suggestion), 85-89 split in two (one-to-many), 90-99 missing (an unrelated R<i>).
    key = "lpad(CAST(i AS VARCHAR), 10, '0')"
    return f"""SELECT CASE WHEN cat >= 90 THEN 'R' WHEN cat BETWEEN 80 AND 84 THEN 'S'
                           ELSE 'K' END || {key} AS id,
               CASE WHEN cat BETWEEN 60 AND 69 THEN amount + 0.01
                    WHEN cat BETWEEN 75 AND 79 THEN amount * 1.5
                    WHEN cat BETWEEN 85 AND 89 THEN round(amount / 2, 2)
                    WHEN cat >= 90 THEN CAST(hash(i, {seed}, 9) % 10000000 AS DECIMAL(18, 0))
                                        * 0.01 + 1
                    ELSE amount END :: DECIMAL(18, 2) AS amount,
               strftime(CASE WHEN cat BETWEEN 70 AND 74 THEN date + 2
                             WHEN cat BETWEEN 80 AND 84 THEN date + 1
                             WHEN cat >= 90 THEN DATE '2024-01-01'
                                                 + CAST(hash(i, {seed}, 10) % 365 AS INTEGER)
                             ELSE date END,
                        '%Y-%m-%d') AS date,
               currency,
               CASE WHEN cat BETWEEN 80 AND 84 THEN upper(description) || ' ref'
                    WHEN cat >= 90 THEN 'transfer ' || CAST(hash(i, {seed}, 11) % 100000 AS VARCHAR)
                    ELSE description END AS description,
               hash(i, {seed}, 7) AS shuffle
               FROM base
               UNION ALL
               SELECT 'K' || {key}, (amount - round(amount / 2, 2)) :: DECIMAL(18, 2),
                      strftime(date, '%Y-%m-%d'), currency, description || ' part 2',
                      hash(i, {seed}, 8)
               FROM base WHERE cat BETWEEN 85 AND 89"""  # noqa: S608


def generate(directory: Path, rows: int, seed: int, recipe: str = "four_pass") -> tuple[Path, Path]:
    """Write left.csv and right.csv of the recipe under directory; return their paths."""
    left, right = directory / "left.csv", directory / "right.csv"
    con = duckdb.connect()
    _base(con, rows, seed)
    _write_left(con, left)
    query = _right_four_pass(seed) if recipe == "four_pass" else _right_two_pass(seed)
    con.execute(
        f"""COPY (SELECT id, amount, date, currency, description FROM ({query})
                  ORDER BY shuffle, id)
            TO '{right}' (HEADER, DELIMITER ',')"""  # noqa: S608
    )
    con.close()
    return left, right
