"""Seeded benchmark data: two CSV files that should mostly agree.

Every left record i has key K<i>. Its counterpart on the right depends on a
seeded hash of i: 70 % identical, 10 % amount off by 0.01 (inside the
tolerance), 5 % date two days later (inside the window), 5 % amount 50 %
higher (a break), 10 % missing (the right gets an unrelated record with key
R<i> instead, so both sides have unmatched records). One left record in a
hundred repeats the previous key (a duplicate). The right file is written in
a shuffled order. DuckDB generates it, so 10M rows take seconds. Amounts are cents:
DECIMAL / INTEGER is a DOUBLE in DuckDB, so the division is cast back to DECIMAL(18, 2)
(without it some amounts were written with 11 to 16 decimals).
"""

from __future__ import annotations

from pathlib import Path

import duckdb

RULES = {
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
            "amount_tolerance": {"absolute": "0.01", "relative": "0.001"},
            "date_window_days": 3,
        },
    ],
    "break_on": ["key"],
}
ABS_TOL = 0.01
REL_TOL = 0.001


def generate(directory: Path, rows: int, seed: int) -> tuple[Path, Path]:
    """Write left.csv and right.csv under directory; return their paths."""
    left, right = directory / "left.csv", directory / "right.csv"
    con = duckdb.connect()
    con.execute(
        f"""CREATE TABLE base AS SELECT i,
              hash(i, {seed}, 1) % 100 AS cat,
              CAST(CAST(hash(i, {seed}, 2) % 10000000 AS DECIMAL(18, 0)) / 100 + 1
                   AS DECIMAL(18, 2)) AS amount,
              DATE '2024-01-01' + CAST(hash(i, {seed}, 3) % 365 AS INTEGER) AS date,
              ['USD', 'EUR', 'GBP'][1 + CAST(hash(i, {seed}, 4) % 3 AS INTEGER)] AS currency,
              'payment ' || CAST(hash(i, {seed}, 5) % 100000 AS VARCHAR) AS description,
              hash(i, {seed}, 6) % 100 = 0 AND i > 0 AS dup
            FROM range({rows}) t(i)"""  # noqa: S608
    )
    con.execute(
        f"""COPY (SELECT 'K' || lpad(CAST(CASE WHEN dup THEN i - 1 ELSE i END AS VARCHAR), 10, '0')
                  AS id, amount, strftime(date, '%Y-%m-%d') AS date, currency, description
                  FROM base ORDER BY i)
            TO '{left}' (HEADER, DELIMITER ',')"""  # noqa: S608
    )
    con.execute(
        f"""COPY (SELECT CASE WHEN cat >= 90 THEN 'R' ELSE 'K' END
                         || lpad(CAST(i AS VARCHAR), 10, '0') AS id,
                  CASE WHEN cat BETWEEN 70 AND 79 THEN amount + 0.01
                       WHEN cat BETWEEN 85 AND 89 THEN amount * 1.5
                       ELSE amount END :: DECIMAL(18, 2) AS amount,
                  strftime(CASE WHEN cat BETWEEN 80 AND 84 THEN date + 2 ELSE date END,
                           '%Y-%m-%d') AS date,
                  currency, description
                  FROM base ORDER BY hash(i, {seed}, 7))
            TO '{right}' (HEADER, DELIMITER ',')"""  # noqa: S608
    )
    con.close()
    return left, right
