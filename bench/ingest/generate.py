"""Seeded generator of a realistic bank-statement CSV for the ingestion benchmark."""

from __future__ import annotations

import argparse
import random
from pathlib import Path

CURRENCIES = ("EUR", "EUR", "EUR", "USD", "USD", "GBP", "CHF")
WORDS = [
    "invoice",
    "payment",
    "transfer",
    "card",
    "fee",
    "refund",
    "salary",
    "rent",
    "utilities",
    "supplier",
    "customer",
    "order",
    "settlement",
    "interest",
    "charge",
]


def _amount(rng: random.Random) -> tuple[str, int]:
    """One formatted amount and its value in cents (the generator's own ground truth)."""
    cents = rng.randint(1, 50_000_000)
    whole, frac = divmod(cents, 100)
    text = f"{whole:,}.{frac:02d}"
    if rng.random() < 0.3:
        return f"({text})", -cents
    return text, cents


def generate(path: Path, rows: int, seed: int = 42) -> int:
    """Write ``rows`` records to ``path`` and return the sum of amounts in cents."""
    rng = random.Random(seed)
    total = 0
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write("Reference,Amount,Value Date,Currency,Description,Account,Channel\r\n")
        chunk: list[str] = []
        for i in range(1, rows + 1):
            amount, cents = _amount(rng)
            total += cents
            day, month = rng.randint(1, 28), rng.randint(1, 12)
            desc = " ".join(rng.choices(WORDS, k=rng.randint(2, 5)))
            if rng.random() < 0.05:
                desc = f'"{desc}, ref ""{i}"""'
            chunk.append(
                f'TX{i:08d},"{amount}",{day:02d}/{month:02d}/2024,{rng.choice(CURRENCIES)},'
                f"{desc},DE{rng.randint(10**9, 10**10 - 1)},{rng.choice(('web', 'pos', 'atm'))}\r\n"
            )
            if len(chunk) == 10_000:
                out.write("".join(chunk))
                chunk.clear()
        out.write("".join(chunk))
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("path", type=Path)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    print(generate(args.path, args.rows, args.seed))


if __name__ == "__main__":
    main()


def generate_clean(path: Path, rows: int, seed: int) -> int:
    """A clean CSV (plain amounts, ISO dates): what DuckDB can read typed. Returns the cents.

    Columns reference (REF<row>), amount (-50,000.00 .. 50,000.00, '.' decimal,
    no separators), date (YYYY-MM-DD), currency, description.
    """
    import duckdb

    con = duckdb.connect()
    con.execute(
        f"""CREATE TABLE t AS SELECT i,
              CAST(hash(i, {seed}, 1) % 10000000 AS BIGINT) - 5000000 AS cents,
              DATE '2024-01-01' + CAST(hash(i, {seed}, 2) % 365 AS INTEGER) AS d,
              ['EUR', 'USD', 'GBP', 'CHF'][1 + CAST(hash(i, {seed}, 3) % 4 AS INTEGER)] AS ccy,
              'payment ' || CAST(hash(i, {seed}, 4) % 100000 AS VARCHAR) AS descr
            FROM range(1, {rows + 1}) r(i)"""  # noqa: S608
    )
    con.execute(
        f"""COPY (SELECT 'REF' || lpad(CAST(i AS VARCHAR), 9, '0') AS reference,
                  CAST(cents AS DECIMAL(18, 0)) * 0.01 AS amount,
                  strftime(d, '%Y-%m-%d') AS date, ccy AS currency, descr AS description
                  FROM t ORDER BY i)
            TO '{path}' (HEADER, DELIMITER ',')"""  # noqa: S608
    )
    (total,) = con.execute("SELECT sum(cents) FROM t").fetchone() or (0,)
    con.close()
    return int(total)
