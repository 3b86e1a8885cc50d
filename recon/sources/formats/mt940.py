"""MT940 / MT942 (SWIFT customer statements), read with the ``mt-940`` package.

One record per ``:61:`` line: the key is the bank's reference (after ``//``),
else the customer reference unless it is ``NONREF``; the amount is signed by the
C/D/RC/RD mark (``RC``, a reversed credit, takes money out); the date is the
value date, the booking (entry) date is kept beside it; the currency comes from
the opening balance (``:60F:``/``:60M:``); the description is the ``:86:`` text.

The file is cut into statements at each ``:20:`` and each statement is parsed
on its own, so memory is bounded by the largest statement, not the file.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import mt940

from recon.sources.formats.statement import NOT_A_NUMBER, FormatError, Record, Statement

LABEL = "an MT940 statement"
OPTIONS = mt940.Options(
    reversal_sign=True,
    case_insensitive_marks=True,
    merge_keeps_values=True,
    unbounded_details=True,
    strip_bom=True,
)
# A statement starts with :20: (transaction reference) and carries :25: and :28C:.
_TAG = re.compile(rb"^:(20|25|28C?|60[FM]|61|62[FM]):", re.MULTILINE)
_NO_REFERENCE = {"", "NONREF", "NOTPROVIDED"}


def sniff(head: bytes) -> bool:
    """Whether the sample looks like MT940/MT942: the statement tags at line starts."""
    tags = {m.group(1)[:2] for m in _TAG.finditer(head)}
    return {b"20", b"25", b"61"} <= tags or {b"20", b"25", b"60", b"62"} <= tags


def _decode(data: bytes) -> str:
    # SWIFT's character set is a subset of ASCII; banks write Latin-1 or UTF-8 into :86:.
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _blocks(path: Path) -> Iterator[str]:
    """Yield the text of each statement (from one :20: to the next)."""
    pending: list[bytes] = []
    with path.open("rb") as handle:
        for line in handle:
            if line.startswith(b":20:") and any(p.strip() for p in pending):
                yield _decode(b"".join(pending))
                pending = []
            pending.append(line)
    if any(p.strip() for p in pending):
        yield _decode(b"".join(pending))


def _balance(value: Any) -> tuple[Decimal | None, str | None]:
    amount = getattr(value, "amount", None)
    if amount is None or not hasattr(amount, "amount"):
        return None, None
    return amount.amount, amount.currency


def _date(value: Any) -> date | None:
    return date(value.year, value.month, value.day) if value else None


def _statement(data: dict[str, Any]) -> Statement:
    opening, currency = _balance(
        data.get("final_opening_balance") or data.get("intermediate_opening_balance")
    )
    closing, closing_currency = _balance(
        data.get("final_closing_balance") or data.get("intermediate_closing_balance")
    )
    number = data.get("statement_number")
    sequence = data.get("sequence_number")
    ident = f"{number}/{sequence}" if number and sequence else number
    return Statement(
        account=data.get("account_identification"),
        id=ident or data.get("transaction_reference"),
        currency=currency or closing_currency,
        opening=opening,
        closing=closing,
    )


def _key(data: dict[str, Any]) -> tuple[str | None, str | None]:
    bank = (data.get("bank_reference") or "").strip()
    customer = (data.get("customer_reference") or "").strip()
    if bank and bank.upper() not in _NO_REFERENCE:
        other = customer if customer.upper() not in _NO_REFERENCE else None
        return bank, other
    return (customer if customer.upper() not in _NO_REFERENCE else None), None


def read(path: Path, statements: list[Statement]) -> Iterator[Record]:
    """Yield the records of every statement in the file, appending each statement."""
    for block in _blocks(path):
        try:
            parsed = mt940.parse_statements(block, options=OPTIONS)
        except ArithmeticError as exc:  # decimal's InvalidOperation: an amount such as '1,2,3'
            raise FormatError(f"a statement could not be parsed: {NOT_A_NUMBER}") from exc
        except (ValueError, KeyError, AttributeError, TypeError, RuntimeError) as exc:
            raise FormatError(f"a statement could not be parsed ({exc})") from exc
        for transactions in parsed:
            statement = _statement(transactions.data)
            statements.append(statement)
            index = len(statements) - 1
            for transaction in transactions:
                data = transaction.data
                amount = data.get("amount")
                if amount is None:
                    continue  # the placeholder the parser keeps before a first :61:
                key, reference = _key(data)
                yield Record(
                    statement=index,
                    key=key,
                    amount=amount.amount,
                    currency=amount.currency or statement.currency,
                    booking_date=_date(data.get("entry_date")),
                    value_date=_date(data.get("date")),
                    description=data.get("transaction_details"),
                    reference=reference,
                    type=data.get("id"),
                )
