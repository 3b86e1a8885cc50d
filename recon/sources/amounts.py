"""Exact amounts from text, as DuckDB SQL: a regular expression validates, a DECIMAL cast converts.

Accepted: ``1,234.56``, ``1.234,56`` (decimal ","), ``1 234,56``, ``1'234.56``,
``(1,234.56)``, ``-12.00``, ``12.00-``, ``+5``, ``$1,234.56``, ``EUR 12``,
``€ 1.234,56``, ``12 USD``: at most one sign (parentheses count as one) and
one currency, an ISO 4217 code (so ``12abc`` is not an amount, never 12 "ABC")
or a symbol. Digits never pass through a float: the cleaned text is cast
straight to ``DECIMAL(38, scale)``.

Speed matters here (a million rows per upload): validation is one anchored
``regexp_full_match`` (no captures, so RE2 runs its DFA); conversion, done
only once every cell is known valid, deletes the non-digits and casts.
"""

from __future__ import annotations

from dataclasses import dataclass

from recon.sources.currencies import SYMBOL_CURRENCIES, iso_codes

MIN_SCALE = 2
MAX_SCALE = 18
MAX_PRECISION = 38
SPACES = " \u00a0\u202f"
WS = "[\\s\u00a0\u202f]*"
SYMBOLS = "[$€£¥₹]"
# Where a currency code stands in the grammar: every ISO code spelled out (a made-up code
# never matches), or any three letters with the code checked apart (ISO_CODES). Spelled
# out in each of the grammar's forms, the codes make a 9,777-character expression that
# RE2 takes 10 ms to compile in every statement using it, most of a small upload's time;
# with the letters it is 1,377 characters and 1.5 ms, but checking the code apart costs
# 0.25 us more for each cell that is not a plain number. Small tables take the letters,
# large ones the spelled-out codes (SPELL_OUT_ROWS).
SPELLED_CODES = "(?:" + "|".join(iso_codes()) + "|" + SYMBOLS + ")"
LETTER_CODES = "(?:[A-Za-z]{3}|" + SYMBOLS + ")"
SPELL_OUT_ROWS = 100_000
# Thousands separators accepted besides the other decimal mark when none is given.
OTHER_SEPARATORS = "'" + SPACES


def sql_string(text: str) -> str:
    """Return ``text`` as a SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


ISO_CODES = "(" + ", ".join(sql_string(code) for code in iso_codes()) + ")"


def ident(name: str) -> str:
    """Return ``name`` as a quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def _class(chars: str) -> str:
    """Return ``chars`` escaped for use inside a regular-expression character class."""
    return "".join("\\" + ch if ch in "]\\^-[" else ch for ch in chars)


@dataclass(frozen=True)
class AmountGrammar:
    """The amount syntax for one decimal mark (and optionally one thousands separator)."""

    decimal: str = "."
    thousands: str | None = None
    # Currency codes spelled out in the expression, or three letters checked apart.
    spelled: bool = False

    @property
    def separators(self) -> str:
        if self.thousands is not None:
            return self.thousands
        return ("," if self.decimal == "." else ".") + OTHER_SEPARATORS

    def number_pattern(self) -> str:
        d = "\\" + self.decimal
        grouped = f"\\d{{1,3}}(?:[{_class(self.separators)}]\\d{{3}})+" if self.separators else None
        plain = f"\\d+(?:{d}\\d*)?|{d}\\d+"
        return f"(?:{grouped}(?:{d}\\d*)?|{plain})" if grouped else f"(?:{plain})"

    def pattern(self) -> str:
        """The whole cell, case-insensitive: a number, at most one currency, at most one sign.

        Each place a sign may go is spelled out, so one anchored match validates the cell.
        """
        n, w, c = self.number_pattern(), WS, SPELLED_CODES if self.spelled else LETTER_CODES
        bare = f"(?:{c}{w}{n}|{n}{w}{c}|{n})"
        forms = [
            bare,
            f"[-+]{w}{bare}",  # -12, -$12, -12 EUR
            f"{c}{w}[-+]{w}{n}",  # $-12, EUR -12
            f"{n}{w}-(?:{w}{c})?",  # 12-, 12- EUR
            f"(?:{c}{w}{n}|{n}{w}{c}){w}-",  # EUR 12-, 12 EUR-
            f"\\({w}{bare}{w}\\)",  # (12), ($12), (12 EUR)
            f"{c}{w}\\({w}{n}{w}\\)",  # $(12)
            f"\\({w}{n}{w}\\){w}{c}",  # (12) EUR
        ]
        return f"^{w}(?:{'|'.join(forms)}){w}$"

    def plain_pattern(self) -> str:
        """The common cell (``-1234.56``): a subset of ``pattern()``, a third cheaper to match."""
        return f"-?[0-9]+(?:[{_class(self.decimal)}][0-9]+)?"

    def valid(self, c: str) -> str:
        """SQL: the cell is one amount (NULL for NULL).

        The plain form is tried first; only the other cells meet the whole grammar.
        """
        plain = f"regexp_full_match({c}, {sql_string(self.plain_pattern())})"
        return f"(CASE WHEN {plain} THEN true ELSE {self.valid_general(c)} END)"

    def valid_general(self, c: str) -> str:
        """SQL: the cell is one amount, by the whole grammar alone (what ``valid`` equals).

        A currency code in it is ISO 4217 (so ``12abc`` is not an amount): spelled out in
        the expression, or, as three letters, checked apart (the only letters a cell
        the expression matches has)."""
        whole = f"regexp_full_match({c}, {sql_string(self.pattern())}, 'i')"
        if self.spelled:
            return whole
        code = f"nullif(upper(regexp_extract({c}, '[A-Za-z]{{3}}', 0)), '')"
        return f"({whole} AND coalesce({code} IN {ISO_CODES}, true))"

    def fraction_digits(self, c: str) -> str:
        """SQL: how many decimals a valid cell has (meaningless for invalid ones)."""
        pattern = sql_string(f"[{_class(self.decimal)}](\\d*)")
        return f"length(regexp_extract({c}, {pattern}, 1))"

    def fraction_bound(self, c: str) -> str:
        """SQL: at least ``fraction_digits`` for any cell, at a seventh of its cost.

        What follows the first decimal mark: its digits and, in some cells, more
        (``12.50 EUR``); 0 without a mark. When the column's largest bound is at most
        the least scale, so is every cell's count of decimals.
        """
        mark = sql_string(self.decimal)
        return (
            f"(CASE WHEN contains({c}, {mark}) THEN strlen({c}) - strpos({c}, {mark}) ELSE 0 END)"
        )

    def value(self, c: str, scale: int) -> str:
        """SQL: the exact DECIMAL(38, scale) of a cell already known valid; NULL on overflow.

        A valid cell's only digits are the amount's and it has at most one decimal mark,
        so deleting everything else leaves the number.
        """
        digits = f"regexp_replace({c}, {sql_string('[^0-9' + _class(self.decimal) + ']')}, '', 'g')"
        if self.decimal != ".":
            digits = f"replace({digits}, {sql_string(self.decimal)}, '.')"
        sign = f"(CASE WHEN contains({c}, '-') OR contains({c}, '(') THEN '-' ELSE '' END)"
        general = f"TRY_CAST({sign} || {digits} AS DECIMAL({MAX_PRECISION}, {scale}))"
        if self.decimal != ".":
            return general
        # The common cell (-1234.56) casts as it is, five times faster than cleaning it first.
        # DuckDB's cast takes only a sign, digits, one '.', an exponent, '_' and spaces, and a
        # valid cell that it takes has no exponent (an 'e' is only ever part of a currency
        # code, which the cast refuses), so its value is the same as the general path's.
        return f"coalesce(TRY_CAST({c} AS DECIMAL({MAX_PRECISION}, {scale})), {general})"

    def integer_digits(self, c: str) -> str:
        """SQL: how many digits a valid cell has before the decimal mark (for messages)."""
        number = f"regexp_extract({c}, {sql_string(self.number_pattern())}, 0)"
        whole = f"split_part({number}, {sql_string(self.decimal)}, 1)"
        return f"length(ltrim(translate({whole}, {sql_string(self.separators)}, ''), '0'))"

    @staticmethod
    def currency(c: str) -> str:
        """SQL: the currency written in the cell: its ISO code (``EUR 12``), or a symbol that
        names one currency (``€ 12``); NULL otherwise (``$`` and ``kr`` need options.currency)."""
        symbols = " ".join(
            f"WHEN contains({c}, {sql_string(s)}) THEN {sql_string(code)}"
            for s, code in SYMBOL_CURRENCIES.items()
        )
        return (
            f"(CASE {symbols} ELSE nullif(upper(regexp_extract({c}, '[A-Za-z]{{3}}', 0)), '') END)"
        )


def blank(column_sql: str) -> str:
    """SQL: the cell is empty or only spaces."""
    return f"(coalesce(trim({column_sql}), '') = '')"


def trimmed(column_sql: str) -> str:
    """SQL: ``trim(cell)``, but only the cells that may have something to strip are trimmed.

    trim() copies every cell it sees and is the costliest part of converting a
    key or a description column. It strips the Unicode space separators, and
    the only ASCII one is ' ', so an ASCII cell (as many bytes as characters)
    that neither starts nor ends with ' ' passes through as it is.
    """
    c = column_sql
    edges = f"starts_with({c}, ' ') OR ends_with({c}, ' ') OR strlen({c}) <> length({c})"
    return f"(CASE WHEN {edges} THEN trim({c}) ELSE {c} END)"


def choose_scale(max_fraction_digits: int | None) -> int:
    """Return the source's scale: the most decimals seen, at least 2, at most 18."""
    return min(max(max_fraction_digits or 0, MIN_SCALE), MAX_SCALE)
