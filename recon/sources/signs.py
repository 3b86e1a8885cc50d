"""Signs that live outside the amount: a sign column (``Af Bij``, ``S/H``) or debit and credit
columns, as DuckDB SQL. A sign is never changed silently: whatever could flip one is a row
problem (an unknown indicator, an amount already signed beside a sign column, a negative
value in a debit or credit column, a row with both a debit and a credit).
"""

from __future__ import annotations

from recon.sources.amounts import AmountGrammar, blank, sql_string

SIGNED = "(contains({c}, '-') OR contains({c}, '('))"


def _values(values: tuple[str, ...]) -> str:
    return ", ".join(sql_string(v.casefold()) for v in values)


def indicator(cell: str) -> str:
    return f"lower(trim({cell}))"


def sign_factor(cell: str, debit: tuple[str, ...], credit: tuple[str, ...]) -> str:
    """SQL: -1 for a debit indicator, 1 for a credit one, NULL otherwise."""
    value = indicator(cell)
    return (
        f"(CASE WHEN {value} IN ({_values(debit)}) THEN -1 "
        f"WHEN {value} IN ({_values(credit)}) THEN 1 END)"
    )


def sign_problem(
    sign_cell: str, amount_cell: str, debit: tuple[str, ...], credit: tuple[str, ...]
) -> str:
    """SQL: why the row's sign can not be told (NULL when it can)."""
    shown = ", ".join((*debit[:4], *credit[:4]))
    unknown = (
        f"'sign indicator ' || coalesce('\"' || trim({sign_cell}) || '\"', 'is empty; ') || "
        + sql_string(f" is not a known debit or credit value ({shown}, ...); set options.")
        + " || 'debit_values / credit_values'"
    )
    return (
        f"CASE WHEN {sign_factor(sign_cell, debit, credit)} IS NULL THEN {unknown} "
        f"WHEN {SIGNED.format(c=amount_cell)} THEN "
        + sql_string("amount is already signed, but options.sign_column gives the sign")
        + " END"
    )


def debit_credit_problem(debit_cell: str, credit_cell: str, grammar: AmountGrammar) -> str:
    """SQL: why a debit/credit row is refused (NULL when it is fine)."""
    both = (
        f"NOT {blank(debit_cell)} AND NOT {blank(credit_cell)} "
        f"AND {_nonzero(debit_cell, grammar)} AND {_nonzero(credit_cell, grammar)}"
    )
    return (
        f"CASE WHEN {both} THEN {sql_string('the row has both a debit and a credit')} "
        f"WHEN NOT {blank(debit_cell)} AND {SIGNED.format(c=debit_cell)} "
        f"THEN {sql_string('a negative value in the debit column (debits are written unsigned)')} "
        f"WHEN NOT {blank(credit_cell)} AND {SIGNED.format(c=credit_cell)} "
        f"THEN {sql_string('a negative value in the credit column (credits are written unsigned)')}"
        " END"
    )


def _nonzero(cell: str, grammar: AmountGrammar) -> str:
    # Some exports write 0.00 in the column that does not apply: that is not a second amount.
    return f"coalesce({grammar.value(cell, 2)} <> 0, true)"
