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
from typing import NamedTuple

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


class _Tags(NamedTuple):
    """Every element name the reader looks up, as ElementTree spells it in one namespace.

    Children share their parent's namespace in every CAMT version, so each lookup
    is one C ``find`` of a tag spelled once per document."""

    Acct: str
    AcctSvcrRef: str
    AddtlNtryInf: str
    AddtlTxInf: str
    Amt: str
    AmtDtls: str
    Bal: str
    BkTxCd: str
    BookgDt: str
    Ccy: str
    Cd: str
    CdOrPrtry: str
    CdtDbtInd: str
    Domn: str
    Dt: str
    DtTm: str
    EndToEndId: str
    Fmly: str
    IBAN: str
    Id: str
    NtryDtls: str
    Othr: str
    Prtry: str
    Refs: str
    RmtInf: str
    SubFmlyCd: str
    Tp: str
    TxAmt: str
    TxDtls: str
    Ustrd: str
    ValDt: str


@lru_cache(maxsize=256)
def _tags(tag: str) -> _Tags:
    """The names in the namespace of the element whose tag this is (``{uri}Name``)."""
    namespace = tag[: tag.index("}") + 1] if tag[:1] == "{" else ""
    return _Tags(*(namespace + name for name in _Tags._fields))


def _path(elem: ET.Element | None, *tags: str) -> ET.Element | None:
    """The first descendant along ``tags`` (full tags, one level each), or None."""
    for tag in tags:
        if elem is None:
            return None
        elem = elem.find(tag)
    return elem


class _Entry(NamedTuple):
    """What an entry gives each of its records (a batched entry's parts override the amount)."""

    statement: int
    amount: Decimal | None
    currency: str | None
    indicator: str | None
    booked: date | None
    valued: date | None
    text: str | None
    kind: str | None


def _text_at(elem: ET.Element, *tags: str) -> str | None:
    found = _path(elem, *tags)
    return None if found is None else found.text


def _clean(text: str | None) -> str | None:
    """An element's text stripped, None when it has none."""
    return (text.strip() or None) if text else None


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


def _date(holder: ET.Element | None, t: _Tags, name: str) -> date | None:
    if holder is None:
        return None
    text = _clean(holder.findtext(t.Dt)) or _clean(holder.findtext(t.DtTm))
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
        t = _tags(elem.tag)
        if statement.id is None:
            statement.id = _clean(elem.findtext(t.Id))
        account = elem.find(t.Acct)
        if account is not None and statement.account is None:
            statement.account = _clean(_text_at(account, t.Id, t.IBAN)) or _clean(
                _text_at(account, t.Id, t.Othr, t.Id)
            )
            statement.currency = _clean(account.findtext(t.Ccy))

    def balance(self, statement: Statement, elem: ET.Element) -> None:
        t = _tags(elem.tag)
        kind = _path(elem, t.Tp, t.CdOrPrtry)
        code = None
        if kind is not None:
            code = _clean(kind.findtext(t.Cd)) or _clean(kind.findtext(t.Prtry))
        amount, currency = _amount(elem.find(t.Amt), "Bal/Amt")
        value = _signed(amount, _clean(elem.findtext(t.CdtDbtInd)))
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
        t = _tags(elem.tag)
        amount, currency = _amount(elem.find(t.Amt), "Ntry/Amt")
        indicator = _clean(elem.findtext(t.CdtDbtInd))
        booked = _date(elem.find(t.BookgDt), t, "BookgDt")
        valued = _date(elem.find(t.ValDt), t, "ValDt")
        entry_ref = _clean(elem.findtext(t.AcctSvcrRef))
        entry_text = _clean(elem.findtext(t.AddtlNtryInf))
        code = elem.find(t.BkTxCd)
        kind = None
        if code is not None:
            kind = _clean(_text_at(code, t.Domn, t.Fmly, t.SubFmlyCd)) or _clean(
                _text_at(code, t.Prtry, t.Cd)
            )
        details = [tx for d in elem.findall(t.NtryDtls) for tx in d.findall(t.TxDtls)]
        entry = _Entry(index, amount, currency, indicator, booked, valued, entry_text, kind)
        if len(details) <= 1:
            yield self._record(entry, t, details[0] if details else None, entry_ref)
            return
        for tx in details:
            found = tx.find(t.Amt)
            if found is None:
                found = _path(tx, t.AmtDtls, t.TxAmt, t.Amt)
            tx_amount, tx_currency = _amount(found, "TxDtls/Amt")
            part = entry._replace(
                amount=tx_amount,
                currency=tx_currency or currency,
                indicator=_clean(tx.findtext(t.CdtDbtInd)) or indicator,
            )
            yield self._record(part, t, tx, None)

    @staticmethod
    def _record(entry: _Entry, t: _Tags, tx: ET.Element | None, entry_ref: str | None) -> Record:
        tx_ref = end_to_end = remittance = None
        if tx is not None:
            refs = tx.find(t.Refs)
            if refs is not None:
                tx_ref = _clean(refs.findtext(t.AcctSvcrRef))
                end_to_end = _clean(refs.findtext(t.EndToEndId))
            info = tx.find(t.RmtInf)
            if info is not None:
                remittance = " ".join(u.text.strip() for u in info.findall(t.Ustrd) if u.text)
            remittance = remittance or _clean(tx.findtext(t.AddtlTxInf))
        key = _reference(tx_ref, entry_ref, end_to_end)
        return Record(
            statement=entry.statement,
            key=key,
            amount=_signed(entry.amount, entry.indicator),
            currency=entry.currency,
            booking_date=entry.booked,
            value_date=entry.valued,
            description=remittance or entry.text,
            reference=_reference(end_to_end) if key != end_to_end else None,
            type=entry.kind,
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
                for balance in piece.element.findall(_tags(piece.element.tag).Bal):
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
