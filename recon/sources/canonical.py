"""From the raw text table to the canonical Parquet: analyse, validate, convert, summarise.

Works on a DuckDB view ``src(row, c1 .. cN)`` of VARCHAR cells. Every step is
one set-based query; only the at most ``max_problems`` rejected rows reach Python.
"""

# ruff: noqa: S608 - SQL here is composed from generated column names (c1..cN) and
# literals quoted by sql_string(); no uploaded text is spliced in unquoted.

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
from duckdb.sqltypes import VARCHAR

from recon.sources import dates
from recon.sources.amounts import (
    MAX_PRECISION,
    MAX_SCALE,
    MIN_SCALE,
    SPELL_OUT_ROWS,
    AmountGrammar,
    blank,
    choose_scale,
    ident,
    sql_string,
    trimmed,
)
from recon.sources.currencies import SYMBOL_CURRENCIES, iso_codes
from recon.sources.export_options import CREDIT_VALUES, DEBIT_VALUES
from recon.sources.mapping import Resolved, field_column
from recon.sources.options import Limits, Options
from recon.sources.problems import Problems, col
from recon.sources.rejections import UploadRejected, problem
from recon.sources.signs import debit_credit_problem, sign_factor, sign_problem

SAMPLE_ROWS = 10_000
CURRENCY_SYMBOLS = SYMBOL_CURRENCIES
# The reason reported when a file has problems of several kinds: the first present.


def currency_code_sql(cell: str) -> str:
    """SQL: the currency a currency cell names: its code upper-cased, a symbol's code, NULL
    when blank (a cell that names none is refused before this is read)."""
    value = trimmed(cell)
    symbols = " ".join(
        f"WHEN {value} = {sql_string(s)} THEN {sql_string(c)}" for s, c in CURRENCY_SYMBOLS.items()
    )
    general = f"(CASE WHEN {blank(cell)} THEN NULL {symbols} ELSE upper({value}) END)"
    # The common cell (EUR) is its own code: no spaces, no symbol, already upper case.
    return f"(CASE WHEN regexp_full_match({cell}, '[A-Z]{{3}}') THEN {cell} ELSE {general} END)"


@dataclass
class Summary:
    row_count: int
    sums: dict[str, str]
    min_date: str | None
    max_date: str | None


@dataclass
class Canonical(Problems):
    """The conversion of one loaded source; ``analyse`` first, then ``write``."""

    con: duckdb.DuckDBPyConnection
    resolved: Resolved
    headers: list[str]
    options: Options
    limits: Limits
    grammar: AmountGrammar = field(default_factory=AmountGrammar)
    scale: int = 2
    date_format: str | None = None
    dropped: set[int] = field(default_factory=set)
    # How many columns the header (or options.columns) names; columns past it hold the
    # values of rows longer than the header.
    header_width: int | None = None
    overflow: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.resolved.named:
            # Python's casefold for non-ASCII text, as the engine folds keys.
            self.con.create_function("recon_casefold", lambda v: v.casefold(), [VARCHAR], VARCHAR)
            self.con.execute(
                "CREATE OR REPLACE MACRO recon_fold(x) AS CASE WHEN strlen(x) = length(x) "
                "THEN lower(x) ELSE recon_casefold(x) END"
            )

    @property
    def fields(self) -> dict[str, int]:
        return self.resolved.fields

    @property
    def amount_columns(self) -> list[int]:
        f = self.fields
        return [f["amount"]] if "amount" in f else [f["debit"], f["credit"]]

    def one(self, sql: str) -> tuple[Any, ...]:
        """Return the single row of an aggregate query."""
        row = self.con.execute(sql).fetchone()
        if row is None:
            raise RuntimeError("an aggregate query returned no row")
        return row

    def _bad_amount(self, grammar: AmountGrammar, index: int) -> str:
        """SQL: the amount cell is not acceptable (blank is bad unless debit/credit)."""
        invalid = f"NOT coalesce({grammar.valid(col(index))}, false)"
        if "amount" in self.fields:
            return invalid  # a blank cell does not match either
        return f"(NOT {blank(col(index))} AND {invalid})"

    # -- analysis -----------------------------------------------------------------

    def analyse(self, *, rows: int) -> None:
        """Pick decimal mark, scale and date format for the ``rows`` loaded; raise UploadRejected
        on any problem."""
        self.grammar = self._choose_grammar(spelled=rows > SPELL_OUT_ROWS)
        g, columns = self.grammar, self.amount_columns
        unnamed = [i for i, h in enumerate(self.headers) if not h]
        # sum(CAST(... AS INTEGER)) rather than count(*) FILTER: DuckDB runs it twice as fast.
        exprs = ["count(*)"]
        for i in columns:
            # Invalid cells may inflate the maximum, but then the file is refused anyway.
            exprs += [
                f"sum(CAST({self._bad_amount(g, i)} AS INTEGER))",
                f"max({g.fraction_bound(col(i))})",
            ]
        exprs += [f"max(strlen({col(i)}))" for i in range(len(self.headers))]
        exprs += [f"count({col(i)})" for i in unnamed]
        exprs.append(f"sum(CAST(NOT ({self._currency_ok()}) AS INTEGER))")
        exprs.append(f"sum(CAST({self._date_blank()} AS INTEGER))")
        sign = self.sign_problem_sql()
        exprs.append(f"sum(CAST(({sign}) IS NOT NULL AS INTEGER))" if sign else "0")
        values = self.one(f"SELECT {', '.join(exprs)} FROM src")

        rest = list(values[1:])
        amount_stats = [rest[k : k + 2] for k in range(0, 2 * len(columns), 2)]
        rest = rest[2 * len(columns) :]
        lengths, rest = rest[: len(self.headers)], rest[len(self.headers) :]
        filled, (bad_currency, blank_dates, bad_signs) = rest[: len(unnamed)], rest[len(unnamed) :]
        self.dropped = {i for i, n in zip(unnamed, filled, strict=True) if n == 0}
        width = self.header_width if self.header_width is not None else len(self.headers)
        self.overflow = [i for i in unnamed if i >= width and i not in self.dropped]
        fractions = self._fraction_digits(max((s[1] or 0) for s in amount_stats))
        self.scale = choose_scale(fractions)

        self.date_format = self._choose_date_format()
        has_problems = (
            any(s[0] for s in amount_stats)
            or fractions > MAX_SCALE
            or any((n or 0) > self.limits.max_field_bytes for n in lengths)
            or bad_currency
            or blank_dates
            or bad_signs
            or (self.overflow and not self.options.ragged)
        )
        if has_problems:
            self.reject()

    def _fraction_digits(self, bound: int) -> int:
        """The most decimals an amount cell has, counted only when the bound is above the
        least scale (most files write two decimals, plainly: then the bound is the count)."""
        if bound <= MIN_SCALE:
            return bound
        g = self.grammar
        exprs = ", ".join(f"max({g.fraction_digits(col(i))})" for i in self.amount_columns)
        return max((n or 0) for n in self.one(f"SELECT {exprs} FROM src"))

    def _choose_grammar(self, *, spelled: bool) -> AmountGrammar:
        o = self.options
        if o.decimal:
            return AmountGrammar(o.decimal, o.thousands, spelled)
        if o.thousands in (".", ","):
            return AmountGrammar("," if o.thousands == "." else ".", o.thousands, spelled)
        candidates = [
            AmountGrammar(".", o.thousands, spelled),
            AmountGrammar(",", o.thousands, spelled),
        ]
        # The first rows nearly always settle it; the whole column decides when they do not.
        sample = f"(SELECT * FROM src LIMIT {SAMPLE_ROWS})"
        bad = [self._count_bad(g, sample) for g in candidates]
        if (bad[0] == 0) == (bad[1] == 0):
            bad = [self._count_bad(g, "src") for g in candidates]
        return candidates[0] if bad[0] <= bad[1] else candidates[1]

    def _count_bad(self, grammar: AmountGrammar, source: str) -> int:
        bad = " + ".join(
            f"count(*) FILTER (WHERE {self._bad_amount(grammar, i)})" for i in self.amount_columns
        )
        return int(self.one(f"SELECT {bad} FROM {source}")[0])

    def _choose_date_format(self) -> str | None:
        if self.fields.get("date") is None:
            return None
        fmt = self.options.date_format
        if fmt is not None:
            self._check_format(fmt)
            return fmt
        value = f"trim({col(self.fields['date'])})"
        # The first values show the shape; only day/month order may need the whole column.
        stats = {
            shape: dates.ShapeStats(count, first, second, differing)
            for shape, count, first, second, differing in self.con.execute(
                dates.shape_stats_sql("src", value, limit=SAMPLE_ROWS)
            ).fetchall()
        }
        try:
            return dates.choose_format(stats)
        except dates.AmbiguousDates as exc:
            whole = dates.ShapeStats(*self.one(dates.parts_stats_sql("src", value, exc.separator)))
            try:
                return dates.resolve_ambiguity(exc, whole)
            except dates.AmbiguousDates as still:
                raise self._ambiguous(value, still.formats) from still

    def _check_format(self, fmt: str) -> None:
        if fmt == dates.EXCEL_SERIAL:
            return
        try:
            self.con.execute(f"SELECT try_strptime('2024-01-31', {sql_string(fmt)})")
        except duckdb.Error as exc:
            raise UploadRejected(
                f"options.date_format {fmt!r} is not a valid strptime format.",
                reason="bad_options",
                problems=[problem(str(exc).split("\n")[0], column="date_format", value=fmt)],
            ) from exc

    # -- expressions ----------------------------------------------------------------

    def _currency_sql(self) -> str | None:
        index = self.fields.get("currency")
        return None if index is None else currency_code_sql(col(index))

    def _currency_ok(self) -> str:
        index = self.fields.get("currency")
        if index is None:
            return "true"
        symbols = "|".join(CURRENCY_SYMBOLS)
        codes = "|".join(iso_codes())
        cell = col(index)
        return f"({blank(cell)} OR regexp_full_match({cell}, '\\s*(?:{codes}|{symbols})\\s*', 'i'))"

    def _date_blank(self) -> str:
        index = self.fields.get("date")
        return "false" if index is None else blank(col(index))

    def _date_sql(self) -> str:
        index = self.fields.get("date")
        if index is None or self.date_format is None:
            return "CAST(NULL AS DATE)"
        return dates.date_sql(col(index), self.date_format)

    def _amount_sql(self) -> str:
        g, s = self.grammar, self.scale
        if "amount" in self.fields and "sign" in self.fields:
            factor = sign_factor(col(self.fields["sign"]), *self.sign_values)
            value = f"{g.value(col(self.fields['amount']), s)} * {factor}"
        elif "amount" in self.fields:
            value = g.value(col(self.fields["amount"]), s)
        else:
            # An empty cell is 0; an invalid one stays NULL so the file is refused.
            debit, credit = (
                f"(CASE WHEN {blank(col(self.fields[f]))} THEN 0 "
                f"ELSE {g.value(col(self.fields[f]), s)} END)"
                for f in ("debit", "credit")
            )
            value = f"{credit} - {debit}"
        return f"CAST({value} AS DECIMAL({MAX_PRECISION}, {s}))"

    def _currency_output(self) -> str:
        currency = self._currency_sql()
        whole_file = sql_string(self.options.currency) if self.options.currency else None
        if currency is not None:
            return f"coalesce({currency}, {whole_file})" if whole_file else currency
        codes = [self.grammar.currency(col(i)) for i in self.amount_columns]
        if whole_file:
            codes.append(whole_file)
        return f"CAST(coalesce({', '.join(codes)}) AS VARCHAR)"

    @property
    def sign_values(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """(debit, credit) indicators: the options', else the common exports' defaults."""
        o = self.options
        return o.debit_values or DEBIT_VALUES, o.credit_values or CREDIT_VALUES

    def sign_problem_sql(self) -> str | None:
        """SQL: why a row's sign is refused (sign column or debit/credit), NULL when fine."""
        f = self.fields
        if "sign" in f and "amount" in f:
            return sign_problem(col(f["sign"]), col(f["amount"]), *self.sign_values)
        if "debit" in f and "credit" in f and "amount" not in f:
            return debit_credit_problem(col(f["debit"]), col(f["credit"]), self.grammar)
        return None

    def _key_sql(self) -> str:
        f, o = self.fields, self.options
        if o.key_pattern and "key_source" in f:
            cell = f"trim({col(f['key_source'])})"
            return f"coalesce(regexp_extract({cell}, {sql_string(o.key_pattern)}, 1), '')"
        if "key" in f:
            return f"coalesce({trimmed(col(f['key']))}, '')"
        return "''"

    def _named_fields_sql(self) -> str:
        # Normalised like keys (trimmed, case-folded), so rules compare them as the engine
        # compares keys; the column's original text stays among the other columns.
        return "".join(
            f", nullif(recon_fold(trim({col(i)})), '') AS {ident(field_column(name))}"
            for name, i in self.resolved.named.items()
        )

    def extra_columns(self) -> list[tuple[int, str]]:
        """(index, name) of the other columns kept as text; a long row's values are extra_1..n."""
        numbers = {i: k for k, i in enumerate(self.overflow, start=1)}
        return [
            (i, f"extra_{numbers[i]}" if i in numbers else name)
            for i, name in self.resolved.extras
            if i not in self.dropped
        ]

    def select_sql(self) -> str:
        f = self.fields
        description = (
            f"nullif({trimmed(col(f['description']))}, '')"
            if "description" in f
            else "CAST(NULL AS VARCHAR)"
        )
        extras = "".join(f", {col(i)} AS {ident(name)}" for i, name in self.extra_columns())
        return (
            f"SELECT row, {self._key_sql()} AS key, "
            f"{self._amount_sql()} AS amount, {self._date_sql()} AS date, "
            f"{self._currency_output()} AS currency, {description} AS description"
            f"{self._named_fields_sql()}{extras} FROM src"
        )

    # -- output -------------------------------------------------------------------

    def write(self, path: Path) -> Summary:
        """Write the canonical Parquet to ``path`` and return its totals."""
        self.con.execute(
            f"COPY ({self.select_sql()}) TO {sql_string(str(path))} "
            # zstd level 1: about 10 % faster than the default level and no larger here.
            "(FORMAT parquet, COMPRESSION zstd, COMPRESSION_LEVEL 1)"
        )
        groups = self.con.execute(
            "SELECT coalesce(currency, ''), sum(amount), count(*), min(date), max(date), "
            "count(*) FILTER (WHERE date IS NULL), count(*) FILTER (WHERE amount IS NULL) "
            f"FROM read_parquet({sql_string(str(path))}) GROUP BY 1 ORDER BY 1"
        ).fetchall()
        # Calendar-impossible dates and amounts too large for DECIMAL(38, s) only show here.
        if any(g[6] for g in groups) or (
            self.date_format is not None and any(g[5] for g in groups)
        ):
            self.reject()
        firsts = [g[3] for g in groups if g[3] is not None]
        lasts = [g[4] for g in groups if g[4] is not None]
        return Summary(
            row_count=sum(g[2] for g in groups),
            sums={g[0]: str(Decimal(g[1])) for g in groups},
            min_date=min(firsts).isoformat() if firsts else None,
            max_date=max(lasts).isoformat() if lasts else None,
        )

    # -- problems -----------------------------------------------------------------
