"""Exact sums and comparisons, in SQL, of decimal amounts stored as text.

An amount keeps its exact text (``"12.5000000000000001"``, any scale the parser
accepts), never a BIGINT of scaled minor units: 16 decimals of a million overflow
one. PostgreSQL casts the text to ``NUMERIC``, exact at any scale. SQLite has no
exact type past 64-bit integers (its ``sum()`` of integers overflows, its
``NUMERIC`` affinity turns big ones into floats), so ``register_sqlite`` adds
small functions over Python ``Decimal`` to each SQLite connection.

Sums come back as ``Decimal`` (PostgreSQL) or as exact text (SQLite):
``Decimal(str(value))`` reads both. Python arithmetic on them goes through ``EXACT``:
the default context rounds past 28 digits, and an amount alone may have 38.
"""

from __future__ import annotations

from decimal import Context, Decimal, InvalidOperation
from typing import Any

from sqlalchemy import String, literal
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

# 38 digits an amount, and room for the sum of a few billions of them.
EXACT = Context(prec=60, traps=[InvalidOperation])


class decimal_sum(FunctionElement[Any]):  # noqa: N801  (SQL function names are lower case)
    """``sum(amount)``, exact."""

    inherit_cache = True


class decimal_abs_sum(FunctionElement[Any]):  # noqa: N801
    """``sum(abs(amount))``, exact."""

    inherit_cache = True


class decimal_size(FunctionElement[Any]):  # noqa: N801
    """``abs(amount)`` to order by (exact on PostgreSQL, a float on SQLite: enough to order)."""

    inherit_cache = True


class decimal_abs_cmp(FunctionElement[Any]):  # noqa: N801
    """``sign(abs(amount) - bound)``: -1, 0 or 1, exact."""

    inherit_cache = True


def abs_compared_to(column: Any, bound: Decimal) -> Any:
    """Return the SQL -1/0/1 of ``abs(column)`` against ``bound``, exactly."""
    return decimal_abs_cmp(column, literal(format(bound, "f"), String()))


def _arg(element: Any, compiler: Any, index: int, **kw: Any) -> str:
    return str(compiler.process(list(element.clauses)[index], **kw))


@compiles(decimal_sum)
def _sum(element: Any, compiler: Any, **kw: Any) -> str:
    return f"sum(CAST({_arg(element, compiler, 0, **kw)} AS NUMERIC))"


@compiles(decimal_abs_sum)
def _abs_sum(element: Any, compiler: Any, **kw: Any) -> str:
    return f"sum(abs(CAST({_arg(element, compiler, 0, **kw)} AS NUMERIC)))"


@compiles(decimal_size)
def _size(element: Any, compiler: Any, **kw: Any) -> str:
    return f"abs(CAST({_arg(element, compiler, 0, **kw)} AS NUMERIC))"


@compiles(decimal_abs_cmp)
def _cmp(element: Any, compiler: Any, **kw: Any) -> str:
    value, bound = _arg(element, compiler, 0, **kw), _arg(element, compiler, 1, **kw)
    return f"sign(abs(CAST({value} AS NUMERIC)) - CAST({bound} AS NUMERIC))"


@compiles(decimal_sum, "sqlite")
def _sum_sqlite(element: Any, compiler: Any, **kw: Any) -> str:
    return f"recon_decimal_sum({_arg(element, compiler, 0, **kw)})"


@compiles(decimal_abs_sum, "sqlite")
def _abs_sum_sqlite(element: Any, compiler: Any, **kw: Any) -> str:
    return f"recon_decimal_abs_sum({_arg(element, compiler, 0, **kw)})"


@compiles(decimal_size, "sqlite")
def _size_sqlite(element: Any, compiler: Any, **kw: Any) -> str:
    return f"abs(CAST({_arg(element, compiler, 0, **kw)} AS REAL))"


@compiles(decimal_abs_cmp, "sqlite")
def _cmp_sqlite(element: Any, compiler: Any, **kw: Any) -> str:
    value, bound = _arg(element, compiler, 0, **kw), _arg(element, compiler, 1, **kw)
    return f"recon_decimal_abs_cmp({value}, {bound})"


class _Sum:
    """SQLite aggregate: the exact sum of decimal texts (the column is NOT NULL), as text."""

    absolute = False

    def __init__(self) -> None:
        self.total = Decimal(0)

    def step(self, value: Any) -> None:
        amount = Decimal(str(value))
        self.total = EXACT.add(self.total, abs(amount) if self.absolute else amount)

    def finalize(self) -> str:
        return format(self.total, "f")


class _AbsSum(_Sum):
    absolute = True


def _abs_cmp(value: Any, bound: Any) -> int:
    difference = EXACT.subtract(abs(Decimal(str(value))), Decimal(str(bound)))
    return (difference > 0) - (difference < 0)


def register_sqlite(dbapi_conn: Any) -> None:
    """Add the exact decimal functions to one sqlite3 connection."""
    dbapi_conn.create_aggregate("recon_decimal_sum", 1, _Sum)
    dbapi_conn.create_aggregate("recon_decimal_abs_sum", 1, _AbsSum)
    dbapi_conn.create_function("recon_decimal_abs_cmp", 2, _abs_cmp, deterministic=True)
