"""BAI2 (the US cash-management balance reporting format), read with the ``bai2`` package.

One record per ``16`` (transaction detail) record. Amounts are whole minor
units with the decimals implied by the currency (ISO 4217: 2 for USD, 0 for
JPY); the sign comes from the type code (credit or debit). Key: the bank
reference, else the customer reference; date: the group's as-of date (BAI2
details carry no date of their own); description: the detail's text. Each
account of each group is a statement, balanced from its opening ledger (type
010) and closing ledger (015) summaries.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

from bai2.bai2 import parse_from_string
from bai2.constants import TypeCodeTransaction
from bai2.exceptions import IntegrityException, NotSupportedYetException, ParsingException

from recon.sources.currencies import minor_units
from recon.sources.formats.statement import FormatError, Record, Statement

LABEL = "a BAI2 file"
_HEADER = re.compile(rb"^\s*01,[^,\r\n]*,[^,\r\n]*,\d{6},[\d:]{4,8}[,/]", re.ASCII)
OPENING_LEDGER = "010"
CLOSING_LEDGER = "015"


def sniff(head: bytes) -> bool:
    """Whether the sample starts with a BAI2 file header (``01,sender,receiver,yymmdd,hhmm``)."""
    return bool(_HEADER.match(head.lstrip(b"\xef\xbb\xbf")))


def _money(amount: Any, currency: str) -> Decimal | None:
    if amount is None:
        return None
    return Decimal(int(amount)).scaleb(-minor_units(currency))


def _summary(account: Any, code: str, currency: str) -> Decimal | None:
    for item in account.header.summary_items:
        if item.type_code is not None and item.type_code.code == code:
            return _money(item.amount, currency)
    return None


def _signed(detail: Any, currency: str) -> Decimal | None:
    value = _money(detail.amount, currency)
    if value is None or detail.type_code is None:
        return value
    return -value if detail.type_code.transaction == TypeCodeTransaction.debit else value


def read(path: Path, statements: list[Statement]) -> Iterator[Record]:
    """Yield the detail records of every account of every group, appending each account."""
    text = path.read_bytes().decode("latin-1")
    try:
        parsed = parse_from_string(text, check_integrity=True)
    except (
        ParsingException,
        IntegrityException,
        NotSupportedYetException,
        ValueError,
        IndexError,
        KeyError,
        TypeError,
    ) as exc:
        raise FormatError(f"{type(exc).__name__}: {exc}") from exc
    for group in parsed.children:
        as_of = group.header.as_of_date
        for account in group.children:
            currency = account.header.currency or group.header.currency or "USD"
            number = account.header.customer_account_number
            statements.append(
                Statement(
                    account=number,
                    id=f"{as_of.isoformat() if as_of else ''}/{number}",
                    currency=currency,
                    opening=_summary(account, OPENING_LEDGER, currency),
                    closing=_summary(account, CLOSING_LEDGER, currency),
                )
            )
            index = len(statements) - 1
            for detail in account.children:
                bank = (detail.bank_reference or "").strip() or None
                customer = (detail.customer_reference or "").strip() or None
                yield Record(
                    statement=index,
                    key=bank or customer,
                    amount=_signed(detail, currency),
                    currency=currency,
                    booking_date=as_of,
                    value_date=None,
                    description=detail.text,
                    reference=customer if bank else None,
                    type=detail.type_code.code if detail.type_code else None,
                )
