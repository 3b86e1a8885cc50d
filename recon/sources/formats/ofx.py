"""OFX / QFX (Open Financial Exchange, v1 SGML and v2 XML), read with ``ofxtools``.

ofxtools' own tokenizer builds the tree (no XML entity expansion). One record
per ``STMTTRN`` of each bank or credit-card statement: key ``FITID`` (the
bank's id of the transaction), amount ``TRNAMT`` (already signed), date
``DTPOSTED`` (``DTUSER`` kept as the value date), description ``NAME`` and
``MEMO``. OFX gives the closing (ledger) balance but no opening one, so a
statement's ``balanced`` is null.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any

from ofxtools.Parser import OFXTree

from recon.sources.formats.statement import NOT_A_NUMBER, FormatError, Record, Statement

LABEL = "an OFX statement"
_MARK = re.compile(rb"OFXHEADER\s*[:=]|<OFX>", re.IGNORECASE)


def sniff(head: bytes) -> bool:
    """Whether the sample has an OFX v1 header or an ``<OFX>`` root (v2 or QFX)."""
    return bool(_MARK.search(head[:4096]))


def _date(value: datetime | date | None) -> date | None:
    if value is None:
        return None
    return value.date() if isinstance(value, datetime) else value


def _account(account: Any) -> str | None:
    return getattr(account, "acctid", None)


def read(path: Path, statements: list[Statement]) -> Iterator[Record]:
    """Yield the transactions of every statement in the file, appending each statement."""
    tree = OFXTree()
    try:
        tree.parse(str(path))
        ofx = tree.convert()
        found = list(ofx.statements)
    except ArithmeticError as exc:  # decimal's InvalidOperation: an amount such as '1,2,3'
        raise FormatError(NOT_A_NUMBER) from exc
    except Exception as exc:  # noqa: BLE001 - ofxtools raises many kinds on bad input
        raise FormatError(f"{type(exc).__name__}: {exc}") from exc
    for stmt in found:
        currency = getattr(stmt, "curdef", None)
        ledger = getattr(stmt, "ledgerbal", None)
        tranlist = getattr(stmt, "banktranlist", None)
        statements.append(
            Statement(
                account=_account(stmt.account),
                id=_statement_id(tranlist),
                currency=currency,
                opening=None,
                closing=getattr(ledger, "balamt", None),
            )
        )
        index = len(statements) - 1
        for tx in tranlist or []:
            name = getattr(tx, "name", None) or getattr(getattr(tx, "payee", None), "name", None)
            memo = getattr(tx, "memo", None)
            text = " / ".join(t for t in (name, memo) if t) or None
            tx_currency = getattr(getattr(tx, "currency", None), "cursym", None)
            yield Record(
                statement=index,
                key=tx.fitid,
                amount=tx.trnamt,
                currency=tx_currency or currency,
                booking_date=_date(tx.dtposted),
                value_date=_date(getattr(tx, "dtuser", None)),
                description=text,
                reference=getattr(tx, "refnum", None) or getattr(tx, "checknum", None),
                type=getattr(tx, "trntype", None),
            )


def _statement_id(tranlist: Any) -> str | None:
    if tranlist is None:
        return None
    start, end = _date(getattr(tranlist, "dtstart", None)), _date(getattr(tranlist, "dtend", None))
    if start is None or end is None:
        return None
    return f"{start.isoformat()}..{end.isoformat()}"
