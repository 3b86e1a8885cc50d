"""CAMT.053 / .052 / .054 (ISO 20022 bank-to-customer XML), any version from 001.02.

Checked with defusedxml's ``iterparse`` first: a DTD, entities and external
references are refused before anything is read (XXE, "billion laughs"). The
entries are then read in batches parsed in C (``camt_chunks``: three times the
speed of defusedxml's pure-Python parser), or, for documents that are not
ASCII-compatible, through ``iterparse`` with each entry dropped from the tree once
read; memory stays flat however long the statement either way. Namespaces are
whatever the version names (looked up from each element's own).

One record per ``Ntry``, or per ``TxDtls`` when an entry batches several
transactions. Key: the bank's ``AcctSvcrRef`` (of the transaction, else of the
entry), else the ``EndToEndId`` unless it is ``NOTPROVIDED``; amount signed by
``CdtDbtInd`` (``DBIT`` is money out); date: booking date, else value date;
description: the unstructured remittance text, else the additional entry text.
Balances: opening ``OPBD``/``PRCD`` (052: the first ``ITBD``), closing
``CLBD`` (052: the last ``ITBD``).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET  # noqa: S405 - only for the Element type and ParseError
from collections.abc import Iterator
from datetime import date
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from pathlib import Path

import defusedxml
from defusedxml.ElementTree import iterparse

from recon.sources.formats.camt_chunks import check_prolog, pieces
from recon.sources.formats.statement import FormatError, Record, Statement

LABEL = "a CAMT (ISO 20022) statement"
_ROOTS = (b"BkToCstmrStmt", b"BkToCstmrAcctRpt", b"BkToCstmrDbtCdtNtfctn")
ROOT_TAGS = {r.decode() for r in _ROOTS}
_NAMESPACE = re.compile(rb"urn:iso:std:iso:20022:tech:xsd:camt\.05[234]\.")
STATEMENT_TAGS = {"Stmt", "Rpt", "Ntfctn"}
OPENING = ("OPBD", "PRCD")
CLOSING = ("CLBD",)
INTERIM = "ITBD"
_NO_REFERENCE = {"", "NOTPROVIDED", "NONREF"}


def sniff(head: bytes) -> bool:
    """Whether the sample is a CAMT.052/053/054 document."""
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if not text.startswith(b"<"):
        return False
    return bool(_NAMESPACE.search(head)) or any(b"<" + r in head for r in _ROOTS)


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


@lru_cache(maxsize=256)
def _namespace(tag: str) -> str:
    return tag[: tag.index("}") + 1] if tag[:1] == "{" else ""


def _ns(elem: ET.Element) -> str:
    """The ``{uri}`` prefix of the element's tag ('' without a namespace).

    Children share it in every CAMT version, so lookups go through the C ``find``."""
    return _namespace(elem.tag)


@lru_cache(maxsize=1024)
def _tags(ns: str, path: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(ns + name for name in path)


def _find(elem: ET.Element, *path: str) -> ET.Element | None:
    """The first descendant along ``path`` of local names, in the element's namespace."""
    current: ET.Element = elem
    for tag in _tags(_namespace(elem.tag), path):
        found = current.find(tag)
        if found is None:
            return None
        current = found
    return current


def _text(elem: ET.Element, *path: str) -> str | None:
    found = _find(elem, *path)
    if found is None or found.text is None:
        return None
    return found.text.strip() or None


def _all(elem: ET.Element, name: str) -> list[ET.Element]:
    return elem.findall(_ns(elem) + name)


def _amount(elem: ET.Element | None, where: str) -> tuple[Decimal | None, str | None]:
    if elem is None or elem.text is None:
        return None, None
    try:
        value = Decimal(elem.text.strip())
    except InvalidOperation:
        raise FormatError(f"{where}: {elem.text.strip()!r} is not an amount") from None
    return value, elem.get("Ccy")


def _signed(value: Decimal | None, indicator: str | None) -> Decimal | None:
    if value is None:
        return None
    return -value if (indicator or "").upper() == "DBIT" else value


def _date(elem: ET.Element, name: str) -> date | None:
    holder = _find(elem, name)
    if holder is None:
        return None
    text = _text(holder, "Dt") or _text(holder, "DtTm")
    if text is None:
        return None
    try:
        return date.fromisoformat(text[:10])
    except ValueError:
        raise FormatError(f"{name}: {text!r} is not a date") from None


def _reference(*candidates: str | None) -> str | None:
    return next((c for c in candidates if c and c.upper() not in _NO_REFERENCE), None)


class _Reader:
    def __init__(self, statements: list[Statement]) -> None:
        self.statements = statements
        self.interim: list[Decimal] = []

    def start_statement(self) -> None:
        self.statements.append(Statement())
        self.interim = []

    def header(self, statement: Statement, elem: ET.Element) -> None:
        """Fill id, account and currency from what precedes the first entry."""
        if statement.id is None:
            statement.id = _text(elem, "Id")
        account = _find(elem, "Acct")
        if account is not None and statement.account is None:
            statement.account = _text(account, "Id", "IBAN") or _text(account, "Id", "Othr", "Id")
            statement.currency = _text(account, "Ccy")

    def balance(self, statement: Statement, elem: ET.Element) -> None:
        code = _text(elem, "Tp", "CdOrPrtry", "Cd") or _text(elem, "Tp", "CdOrPrtry", "Prtry")
        amount, currency = _amount(_find(elem, "Amt"), "Bal/Amt")
        value = _signed(amount, _text(elem, "CdtDbtInd"))
        if value is None:
            return
        statement.currency = statement.currency or currency
        if code in OPENING and statement.opening is None:
            statement.opening = value
        elif code in CLOSING:
            statement.closing = value
        elif code == INTERIM:
            self.interim.append(value)

    def finish_statement(self, statement: Statement) -> None:
        # A report (camt.052) gives interim balances only: the first opens, the last closes.
        if self.interim and statement.opening is None and len(self.interim) > 1:
            statement.opening = self.interim[0]
        if self.interim and statement.closing is None:
            statement.closing = self.interim[-1]

    def entry(self, index: int, elem: ET.Element) -> Iterator[Record]:
        amount, currency = _amount(_find(elem, "Amt"), "Ntry/Amt")
        indicator = _text(elem, "CdtDbtInd")
        booked, valued = _date(elem, "BookgDt"), _date(elem, "ValDt")
        entry_ref = _text(elem, "AcctSvcrRef")
        entry_text = _text(elem, "AddtlNtryInf")
        kind = _text(elem, "BkTxCd", "Domn", "Fmly", "SubFmlyCd") or _text(
            elem, "BkTxCd", "Prtry", "Cd"
        )
        details = [t for d in _all(elem, "NtryDtls") for t in _all(d, "TxDtls")]
        if len(details) <= 1:
            tx = details[0] if details else None
            yield self._record(
                index,
                elem,
                tx,
                amount,
                currency,
                indicator,
                booked,
                valued,
                entry_ref,
                entry_text,
                kind,
            )
            return
        for tx in details:
            tx_amount, tx_currency = _amount(
                _find(tx, "Amt") or _find(tx, "AmtDtls", "TxAmt", "Amt"), "TxDtls/Amt"
            )
            yield self._record(
                index,
                elem,
                tx,
                tx_amount,
                tx_currency or currency,
                _text(tx, "CdtDbtInd") or indicator,
                booked,
                valued,
                None,
                entry_text,
                kind,
            )

    @staticmethod
    def _record(
        index: int,
        entry: ET.Element,
        tx: ET.Element | None,
        amount: Decimal | None,
        currency: str | None,
        indicator: str | None,
        booked: date | None,
        valued: date | None,
        entry_ref: str | None,
        entry_text: str | None,
        kind: str | None,
    ) -> Record:
        tx_ref = end_to_end = remittance = None
        if tx is not None:
            tx_ref = _text(tx, "Refs", "AcctSvcrRef")
            end_to_end = _text(tx, "Refs", "EndToEndId")
            info = _find(tx, "RmtInf")
            if info is not None:
                remittance = " ".join(u.text.strip() for u in _all(info, "Ustrd") if u.text)
            remittance = remittance or _text(tx, "AddtlTxInf")
        key = _reference(tx_ref, entry_ref, end_to_end)
        return Record(
            statement=index,
            key=key,
            amount=_signed(amount, indicator),
            currency=currency,
            booking_date=booked,
            value_date=valued,
            description=remittance or entry_text,
            reference=_reference(end_to_end) if key != end_to_end else None,
            type=kind,
        )


def read(path: Path, statements: list[Statement]) -> Iterator[Record]:
    """Yield the records of every statement/report/notification, appending each statement."""
    declaration = check_prolog(path)
    if declaration is None:
        yield from read_iterparse(path, statements)
        return
    reader = _Reader(statements)
    current: Statement | None = None
    for piece in pieces(path, declaration):
        if piece.kind == "header":
            reader.start_statement()
            current = statements[-1]
            if piece.element is not None:
                reader.header(current, piece.element)
                for balance in _all(piece.element, "Bal"):
                    reader.balance(current, balance)
        elif piece.kind == "entries" and piece.element is not None:
            if current is None:
                raise FormatError("an entry stands outside a statement")
            for entry in piece.element:
                yield from reader.entry(len(statements) - 1, entry)
        elif piece.kind == "end" and current is not None:
            reader.finish_statement(current)
            current = None


def read_iterparse(path: Path, statements: list[Statement]) -> Iterator[Record]:
    """``read`` through defusedxml's iterparse alone: for documents the cutter can not follow."""
    reader = _Reader(statements)
    stack: list[ET.Element] = []
    current: Statement | None = None
    header_done = False
    try:
        # forbid_dtd: CAMT documents have none; a DTD is how entity attacks begin.
        events = iterparse(
            str(path),
            events=("start", "end"),
            forbid_dtd=True,
            forbid_entities=True,
            forbid_external=True,
        )
        for event, elem in events:
            name = _local(elem.tag)
            if event == "start":
                stack.append(elem)
                if name in STATEMENT_TAGS and len(stack) > 1 and _local(stack[-2].tag) in ROOT_TAGS:
                    reader.start_statement()
                    current, header_done = statements[-1], False
                continue
            stack.pop()
            if current is None or not stack:
                continue
            parent = stack[-1]
            if name in STATEMENT_TAGS and _local(parent.tag) in ROOT_TAGS:
                if not header_done:
                    reader.header(current, elem)
                reader.finish_statement(current)
                parent.remove(elem)  # the statement is read: keep the tree small
                current = None
            elif _local(parent.tag) not in STATEMENT_TAGS:
                continue
            elif name == "Bal":
                reader.balance(current, elem)
                parent.remove(elem)
            elif name == "Ntry":
                if not header_done:
                    reader.header(current, parent)
                    header_done = True
                yield from reader.entry(len(statements) - 1, elem)
                parent.remove(elem)
    except defusedxml.DefusedXmlException as exc:
        raise FormatError(
            "the XML declares a DTD, entities or external references, which recon refuses"
            f" ({type(exc).__name__})"
        ) from exc
    except ET.ParseError as exc:
        raise FormatError(f"the XML is not well-formed ({exc})") from exc
