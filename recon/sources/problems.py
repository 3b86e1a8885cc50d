"""Why a file is refused, row by row: one SQL select per kind of problem, the first 50 shown.

A mixin of ``Canonical`` (recon.sources.canonical): it reads the same view
``src(row, c1 .. cN)`` and the choices ``analyse`` made (grammar, scale, date
format), and raises ``UploadRejected`` with the problems in row order and the
count of all of them.
"""

# ruff: noqa: S608 - SQL here is composed from generated column names (c1..cN) and
# literals quoted by sql_string(); no uploaded text is spliced in unquoted.

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any

from recon.sources import dates
from recon.sources.amounts import MAX_PRECISION, MAX_SCALE, blank, sql_string
from recon.sources.rejections import UploadRejected, problem

if TYPE_CHECKING:
    import duckdb

    from recon.sources.amounts import AmountGrammar
    from recon.sources.options import Limits, Options

# The reason reported when a file has problems of several kinds: the first present.
PRIORITY = ("field_too_large", "ragged_row", "bad_amount", "bad_date", "bad_currency")


def col(index: int) -> str:
    """The generated name of the table's column ``index`` (0-based): c1, c2, ..."""
    return f"c{index + 1}"


class Problems(ABC):
    """The problem listing of a Canonical conversion (abstract: Canonical provides the
    view, the choices and the SQL pieces declared below)."""

    con: duckdb.DuckDBPyConnection
    headers: list[str]
    limits: Limits
    grammar: AmountGrammar
    scale: int
    date_format: str | None
    options: Options
    overflow: list[int]

    @property
    @abstractmethod
    def fields(self) -> dict[str, int]:
        """Provided by Canonical."""

    @property
    @abstractmethod
    def amount_columns(self) -> list[int]:
        """Provided by Canonical."""

    @abstractmethod
    def one(self, sql: str) -> tuple[Any, ...]:
        """Provided by Canonical."""

    @abstractmethod
    def sign_problem_sql(self) -> str | None:
        """Provided by Canonical."""

    @abstractmethod
    def _date_sql(self) -> str:
        """Provided by Canonical."""

    @abstractmethod
    def _currency_ok(self) -> str:
        """Provided by Canonical."""

    def _ambiguous(self, value: str, formats: tuple[str, str]) -> UploadRejected:
        first, second = (f"try_strptime({value}, {sql_string(f)})" for f in formats)
        differ = f"FROM src WHERE {first} <> {second}"
        total = int(self.one(f"SELECT count(*) {differ}")[0])
        header = self.headers[self.fields["date"]]
        examples = self.con.execute(
            f"SELECT row, {value} {differ} ORDER BY row LIMIT {min(10, self.limits.max_problems)}"
        ).fetchall()
        shown = ", ".join(v for _, v in examples[:3])
        return UploadRejected(
            f"The dates in column {header!r} can be read day-first or month-first "
            f"(e.g. {shown}). Set options.date_format to {formats[0]!r} or {formats[1]!r}.",
            reason="ambiguous_date",
            problems=[
                problem(
                    f"ambiguous: {formats[0]} or {formats[1]}; set options.date_format",
                    row=row,
                    column=header,
                    value=v,
                )
                for row, v in examples
            ],
            total=total,
            date_formats=list(formats),
            max_problems=self.limits.max_problems,
        )

    def _problem_selects(self) -> list[str]:
        g, headers, limit = self.grammar, self.headers, self.limits.max_field_bytes
        q = sql_string

        def select(i: int, message: str, category: str, where: str = "true") -> str:
            return (
                f"SELECT * FROM (SELECT row, {i} AS ord, {q(headers[i] or f'column {i + 1}')} "
                "AS col, "
                f"left({col(i)}, 201) AS value, {message} AS message, {q(category)} AS category "
                f"FROM src WHERE {where}) WHERE message IS NOT NULL"
            )

        selects = [
            select(
                i,
                f"'field is ' || strlen({col(i)}) || {q(f' bytes, over the limit of {limit}')}",
                "field_too_large",
                f"strlen({col(i)}) > {limit}",
            )
            for i in range(len(headers))
        ]
        example = "1,234.56" if g.decimal == "." else "1.234,56"
        not_amount = (
            f"not an amount with {g.decimal!r} as decimal mark "
            f"(e.g. {example}, ({example}), -12{g.decimal}00, EUR 12)"
        )
        digits = MAX_PRECISION - self.scale
        for i in self.amount_columns:
            c = col(i)
            empty = self._empty_amount_message(i) if "amount" in self.fields else "NULL"
            message = (
                f"CASE WHEN {blank(c)} THEN {empty} "
                f"WHEN NOT coalesce({g.valid(c)}, false) THEN {q(not_amount)} "
                f"WHEN {g.fraction_digits(c)} > {MAX_SCALE} "
                f"THEN {q(f'more than {MAX_SCALE} decimal places')} "
                f"WHEN {g.integer_digits(c)} > {digits} "
                f"THEN {q(f'too many digits: at most {digits} before the decimal mark')} END"
            )
            selects.append(select(i, message, "bad_amount"))
        overflow = self.overflow
        if overflow and not self.options.ragged:
            width = overflow[0]
            longer = f"coalesce({', '.join(col(i) for i in overflow)}) IS NOT NULL"
            message = q(
                f"the row has more fields than the header's {width}; set options.ragged to "
                "keep the extra values as columns extra_1, extra_2, ..."
            )
            selects.append(select(overflow[0], message, "ragged_row", longer))
        sign = self.sign_problem_sql()
        if sign:
            i = self.fields.get("sign", self.fields.get("debit", 0))
            selects.append(select(i, sign, "bad_amount"))
        if self.date_format is not None:
            i = self.fields["date"]
            wrong = f"not a date in the format {dates.describe(self.date_format)} (or yyyy-mm-dd)"
            message = f"CASE WHEN {blank(col(i))} THEN {q('date is empty')} ELSE {q(wrong)} END"
            selects.append(select(i, message, "bad_date", f"{self._date_sql()} IS NULL"))
        if "currency" in self.fields:
            i = self.fields["currency"]
            message = q("not an ISO 4217 currency code")
            selects.append(select(i, message, "bad_currency", f"NOT {self._currency_ok()}"))
        return selects

    def _empty_amount_message(self, index: int) -> str:
        """SQL: "amount is empty", saying so when the row ends before the amount column."""
        later = [col(i) for i in range(index, len(self.headers))]
        short = f"coalesce({', '.join(later)}) IS NULL" if later else "false"
        filled = " + ".join(
            f"CAST({col(i)} IS NOT NULL AS INTEGER)" for i in range(len(self.headers))
        )
        tail = sql_string(f" fields filled of {len(self.headers)}, none from the amount column on)")
        return (
            f"CASE WHEN {short} THEN 'amount is empty: the row is short (' || ({filled}) || "
            f"{tail} ELSE 'amount is empty' END"
        )

    def reject(self) -> None:
        """Raise UploadRejected listing the first problems by row and the count of all."""
        self.con.execute(
            "CREATE OR REPLACE TEMP TABLE problems AS "
            + " UNION ALL ".join(self._problem_selects())
        )
        counts = dict(
            self.con.execute("SELECT category, count(*) FROM problems GROUP BY 1").fetchall()
        )
        rows = self.con.execute(
            "SELECT row, col, value, message FROM problems ORDER BY row, ord "
            f"LIMIT {self.limits.max_problems}"
        ).fetchall()
        total = sum(counts.values())
        reason = next((r for r in PRIORITY if counts.get(r)), "bad_amount")
        kinds = ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in sorted(counts.items()))
        raise UploadRejected(
            f"{total} problem(s) in the file ({kinds}); nothing was stored.",
            reason=reason,
            problems=[problem(msg, row=row, column=c, value=v) for row, c, v, msg in rows],
            total=total,
            max_problems=self.limits.max_problems,
        )
