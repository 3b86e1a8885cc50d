"""What every bank-statement reader produces, and how it becomes the canonical Parquet.

A reader (one module per format) yields ``Record``s in file order and appends
a ``Statement`` to the list it is given whenever a new statement starts; each
record names the index of its statement. ``write_statements`` turns that
stream into canonical Arrow batches, writes them, and checks every statement's
balance: opening + records = closing is a warning (``balanced: false``), never
a refusal, because real files and the parsers' own test files don't always
balance and the records are still what the bank sent.

The amounts arrive as exact ``Decimal``s; the Parquet's amount scale is the
most decimals seen (at least 2), so a first pass writes the amounts as text
and DuckDB casts them once the scale is known.
"""

# ruff: noqa: S608 - SQL here names our own temporary files, quoted by sql_string()

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from decimal import Context, Decimal, InvalidOperation
from itertools import islice
from pathlib import Path
from typing import Any, NamedTuple

import pyarrow as pa
import pyarrow.parquet as pq

from recon.duckdb_conn import connect
from recon.sources.amounts import MAX_PRECISION, MAX_SCALE, choose_scale, sql_string
from recon.sources.currencies import is_iso_currency
from recon.sources.options import Limits
from recon.sources.rejections import Problem, UploadRejected, problem

BATCH_ROWS = 10_000
# Sums and balances in exact arithmetic: the default context keeps 28 digits, and an
# amount may have 38 (20 before the point, 18 after), a sum of millions of them more.
EXACT = Context(prec=3 * MAX_PRECISION, traps=[InvalidOperation])
# The text columns every statement source carries besides the canonical ones.
EXTRA_COLUMNS = ("booking_date", "value_date", "reference", "type", "account", "statement")


class FormatError(Exception):
    """The file is of a statement format but can not be read; the message is for a person."""


# What a reader says when its parser's decimal arithmetic refused an amount ('1,2,3'):
# decimal's own message is the name of a signal.
NOT_A_NUMBER = "one of its amounts is not a number"


@dataclass
class Statement:
    """One statement of a file: its account and id, and the balances the bank gave."""

    account: str | None = None
    id: str | None = None
    currency: str | None = None
    opening: Decimal | None = None
    closing: Decimal | None = None


class Record(NamedTuple):
    """One booked transaction as the bank reported it (amount signed, + is money in).

    A named tuple: built in C, a third of a frozen dataclass's cost per record."""

    statement: int
    key: str | None
    amount: Decimal | None
    currency: str | None
    booking_date: date | None
    value_date: date | None
    description: str | None = None
    reference: str | None = None
    type: str | None = None


Reader = Callable[[Path, list[Statement]], Iterator[Record]]


@dataclass
class StatementResult:
    row_count: int
    amount_scale: int
    sums: dict[str, str]
    min_date: str | None
    max_date: str | None
    statements: list[dict[str, Any]]
    schema: list[dict[str, str]]
    columns: list[str] = field(default_factory=lambda: list(EXTRA_COLUMNS))


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = " ".join(str(value).split())
    return text or None


def _fit(amount: Decimal) -> tuple[int, str | None]:
    """A finite amount's decimals, and why it does not fit recon's amounts (None if it does)."""
    _, digits, exponent = amount.as_tuple()
    decimals = max(0, -int(exponent))
    if decimals > MAX_SCALE:
        return decimals, f"more than {MAX_SCALE} decimal places"
    # Digits before the point: "1E+40" is one digit and an exponent of 40.
    if len(digits) + int(exponent) > MAX_PRECISION - MAX_SCALE:
        return decimals, "too many digits"
    return decimals, None


class _Checker:
    """Row problems of the records (at most ``max_problems`` kept, all counted)."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.problems: list[Problem] = []
        self.total = 0
        self.scale = 0

    def add(self, row: int, column: str, value: Any, message: str) -> None:
        self.total += 1
        if len(self.problems) < self.limits.max_problems:
            self.problems.append(problem(message, row=row, column=column, value=value))

    def check(self, row: int, record: Record) -> None:
        amount = record.amount
        if amount is None or not amount.is_finite():
            self.add(row, "amount", amount, "missing: the record has no amount")
        else:
            decimals, why = _fit(amount)
            if why is not None:
                self.add(row, "amount", amount, why)
            if decimals > self.scale:
                self.scale = decimals
        if record.currency is not None and not is_iso_currency(record.currency):
            self.add(row, "currency", record.currency, "not an ISO 4217 currency code")
        if record.booking_date is None and record.value_date is None:
            self.add(row, "date", None, "missing: neither a booking nor a value date")


def _batches(
    records: Iterator[Record], checker: _Checker, sums: dict[int, Decimal]
) -> Iterator[pa.RecordBatch]:
    first = 1
    while chunk := list(islice(records, BATCH_ROWS)):
        for row, record in enumerate(chunk, start=first):
            checker.check(row, record)
            amount = record.amount
            if amount is not None and amount.is_finite():
                index = record.statement
                sums[index] = EXACT.add(sums.get(index, Decimal(0)), amount)
        yield _batch(first, chunk)
        first += len(chunk)


SCHEMA = pa.schema(
    [pa.field("row", pa.int64()), pa.field("key", pa.string()), pa.field("amount", pa.string())]
    + [pa.field("date", pa.date32())]
    + [pa.field(n, pa.string()) for n in ("currency", "description", *EXTRA_COLUMNS)]
)


def _batch(first: int, chunk: list[Record]) -> pa.RecordBatch:
    """The records as Arrow columns, numbered from ``first`` (built a column at a time)."""
    statement, key, amount, currency, booked, valued, description, reference, kind = zip(
        *chunk, strict=True
    )
    booked_dates = pa.array(booked, pa.date32())
    valued_dates = pa.array(valued, pa.date32())
    columns = [
        pa.array(range(first, first + len(chunk)), pa.int64()),
        pa.array([_text(k) or "" for k in key], pa.string()),
        pa.array([None if a is None else format(a, "f") for a in amount], pa.string()),
        pa.array([b or v for b, v in zip(booked, valued, strict=True)], pa.date32()),
        pa.array(currency, pa.string()),
        pa.array([_text(d) for d in description], pa.string()),
        booked_dates.cast(pa.string()),  # ISO 8601, as date.isoformat() writes it
        valued_dates.cast(pa.string()),
        pa.array([_text(r) for r in reference], pa.string()),
        pa.array([_text(t) for t in kind], pa.string()),
        pa.nulls(len(chunk), pa.string()),  # account: filled in from the statements below
        pa.array(statement, pa.int64()).cast(pa.string()),
    ]
    return pa.RecordBatch.from_arrays(columns, schema=SCHEMA)


def _plain(value: Decimal | None, scale: int) -> str | None:
    """The figure in plain digits, with the amounts' scale or its own decimals if more."""
    if value is None:
        return None
    exponent = min(-scale, int(value.as_tuple().exponent))
    return str(EXACT.quantize(value, Decimal(1).scaleb(exponent)))


def _bad_balance(value: Decimal | None) -> str | None:
    """Why a statement's balance is not an amount recon holds, or None when it is."""
    if value is None:
        return None
    if not value.is_finite():
        return "is not a number"
    return _fit(value)[1]


def _check_balances(statements: list[Statement], label: str) -> None:
    for index, s in enumerate(statements, start=1):
        for name, value in (("opening", s.opening), ("closing", s.closing)):
            why = _bad_balance(value)
            if why is not None:
                found = problem(
                    f"statement {index}'s {name} balance: {why}",
                    column=f"{name} balance",
                    value=value,
                )
                raise UploadRejected(
                    f"The file looks like {label} but can not be read: {found['message']}"
                    f" ({found['value']}).",
                    reason="format",
                    problems=[found],
                )


def _statement_rows(
    statements: list[Statement], sums: dict[int, Decimal], scale: int
) -> list[dict[str, Any]]:
    out = []
    for index, s in enumerate(statements):
        total = sums.get(index, Decimal(0))
        balanced = None
        if s.opening is not None and s.closing is not None:
            balanced = EXACT.add(s.opening, total) == s.closing
        out.append(
            {
                "account": s.account,
                "id": s.id,
                "currency": s.currency,
                "opening": _plain(s.opening, scale),
                "closing": _plain(s.closing, scale),
                "records_sum": _plain(total, scale),
                "balanced": balanced,
            }
        )
    return out


def write_statements(
    reader: Reader, src: Path, out: Path, work: Path, *, label: str, limits: Limits
) -> StatementResult:
    """Write the canonical Parquet of a statement file to ``out``; raise UploadRejected."""
    statements: list[Statement] = []
    checker = _Checker(limits)
    sums: dict[int, Decimal] = {}
    staged = work / "statement-records.parquet"
    try:
        with pq.ParquetWriter(staged, SCHEMA, compression="zstd") as writer:
            for batch in _batches(reader(src, statements), checker, sums):
                writer.write_batch(batch)
    except FormatError as exc:
        raise UploadRejected(
            f"The file looks like {label} but can not be read: {exc}",
            reason="format",
            problems=[problem(str(exc))],
        ) from exc
    if checker.total:
        first = checker.problems[0]
        raise UploadRejected(
            f"{checker.total} problem(s) in the records of {label}, the first in record "
            f"{first['row']}: {first['column']} {first['value']!r} is {first['message']}; "
            "nothing was stored.",
            reason="bad_amount",
            problems=checker.problems,
            total=checker.total,
            max_problems=limits.max_problems,
        )
    if not sums and not pq.read_metadata(staged).num_rows:
        raise UploadRejected(
            f"The {label} file holds no transactions.",
            reason="empty",
            problems=[problem("no transactions", value=f"{len(statements)} statement(s)")],
        )
    _check_balances(statements, label)
    scale = choose_scale(checker.scale)
    return _convert(staged, out, statements, sums, scale)


def _convert(
    staged: Path, out: Path, statements: list[Statement], sums: dict[int, Decimal], scale: int
) -> StatementResult:
    con = connect()
    try:
        accounts = pa.table(
            {
                "statement": [str(i) for i in range(len(statements))],
                "acct": [s.account for s in statements],
                "stmt": [s.id for s in statements],
            }
        )
        con.register("stmts", accounts)
        extras = ", ".join(f"s.{c}" for c in EXTRA_COLUMNS if c not in ("account", "statement"))
        con.execute(
            f"""COPY (SELECT s.row, s.key, CAST(s.amount AS DECIMAL({MAX_PRECISION}, {scale}))
                AS amount, s.date, s.currency, s.description, {extras},
                t.acct AS account, t.stmt AS statement
                FROM read_parquet({sql_string(str(staged))}) s
                LEFT JOIN stmts t ON t.statement = s.statement ORDER BY s.row)
                TO {sql_string(str(out))} (FORMAT parquet, COMPRESSION zstd, COMPRESSION_LEVEL 1)"""
        )
        groups = con.execute(
            "SELECT coalesce(currency, ''), sum(amount), count(*), min(date), max(date) "
            f"FROM read_parquet({sql_string(str(out))}) GROUP BY 1 ORDER BY 1"
        ).fetchall()
        schema = [
            {"name": name, "type": kind}
            for name, kind, *_ in con.execute(
                f"DESCRIBE SELECT * FROM read_parquet({sql_string(str(out))})"
            ).fetchall()
        ]
    finally:
        con.close()
    firsts = [g[3] for g in groups if g[3] is not None]
    lasts = [g[4] for g in groups if g[4] is not None]
    return StatementResult(
        row_count=sum(g[2] for g in groups),
        amount_scale=scale,
        sums={g[0]: str(Decimal(g[1])) for g in groups},
        min_date=min(firsts).isoformat() if firsts else None,
        max_date=max(lasts).isoformat() if lasts else None,
        statements=_statement_rows(statements, sums, scale),
        schema=schema,
    )
