"""CAMT documents cut into statement headers and batches of entries, each parsed in C.

defusedxml's ``iterparse`` runs ElementTree's pure-Python parser (it must, to hook
the DTD handlers): about 15,000 entries a second here, a third of what a bank
file of 100,000 entries needs. So the document is checked with defusedxml first,
up to its root element: a DTD can only stand before the root (XML 1.0, 2.8) and
without one there are no entity declarations and no external references, so
what follows holds only the five predefined entities. Then the bytes are cut at
the statement and entry tags (``Stmt``/``Rpt``/``Ntfctn``, ``Ntry``, which never
nest) and each piece is parsed by the C ``XMLParser``, wrapped with the
document's namespace declarations. Memory stays bounded by one batch of entries.

Documents this cut can not follow (not ASCII-compatible, such as UTF-16) are left
to the iterparse reader (``recon.sources.formats.camt``).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET  # noqa: S405 - parses pieces of a document checked for a DTD
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import defusedxml
from defusedxml.ElementTree import iterparse

from recon.sources.formats.statement import FormatError

BLOCK_BYTES = 4 * 1024 * 1024
BATCH_ENTRIES = 500
_TAG = re.compile(rb"<(/?)((?:[A-Za-z_][\w.-]*:)?(Stmt|Rpt|Ntfctn|Ntry))(?=[\s>/])")
_XMLNS = re.compile(rb"""\sxmlns(?::[\w.-]+)?\s*=\s*(?:"[^"]*"|'[^']*')""")
_DECL = re.compile(rb"^\s*<\?xml[^>]*\?>")


@dataclass(frozen=True)
class Piece:
    """A statement's header (its start tag to its first entry) or a batch of entries."""

    kind: str  # "header" | "entries" | "end"
    element: ET.Element | None = None


def check_prolog(path: Path) -> bytes | None:
    """Refuse a DTD (defusedxml); return the XML declaration, or None when not ASCII-compatible."""
    with path.open("rb") as handle:
        head = handle.read(4)
    if head[:2] in (b"\xff\xfe", b"\xfe\xff") or b"\x00" in head:
        return None
    try:
        for _event, _elem in iterparse(
            str(path),
            events=("start",),
            forbid_dtd=True,
            forbid_entities=True,
            forbid_external=True,
        ):
            break  # the root element: past the only place a DTD may stand
    except defusedxml.DefusedXmlException as exc:
        raise FormatError(
            "the XML declares a DTD, entities or external references, which recon refuses"
            f" ({type(exc).__name__})"
        ) from exc
    except ET.ParseError as exc:
        raise FormatError(f"the XML is not well-formed ({exc})") from exc
    with path.open("rb") as handle:
        match = _DECL.match(handle.read(1024))
    return match.group(0) if match else b""


class _Cutter:
    def __init__(self, declaration: bytes) -> None:
        self.declaration = declaration
        self.namespaces: list[bytes] = []

    def parse(self, body: bytes) -> ET.Element:
        wrapped = self.declaration + b"<recon-wrap" + b"".join(self.namespaces) + b">"
        try:
            return ET.fromstring(wrapped + body + b"</recon-wrap>")  # noqa: S314 - no DTD: checked
        except ET.ParseError as exc:
            raise FormatError(f"the XML is not well-formed ({exc})") from exc


def pieces(path: Path, declaration: bytes) -> Iterator[Piece]:
    """Yield each statement's header, its entries in batches, and its end, in order."""
    cutter = _Cutter(declaration)
    buffer, pos = b"", 0  # pos: where scanning resumes in buffer
    header: int | None = None  # start of the current statement's header in buffer
    entry: int | None = None  # start of the entry being read
    statement_tag = b""
    batch: list[bytes] = []
    with path.open("rb") as handle:
        while True:
            block = handle.read(BLOCK_BYTES)
            buffer += block
            for match in _TAG.finditer(buffer, pos):
                closing, qname = match.group(1), match.group(2)
                gt = buffer.find(b">", match.end())
                if gt < 0:
                    break  # the tag goes on in the next block
                if match.group(3) != b"Ntry":
                    if not closing:  # a statement starts: its namespaces, then its header
                        cutter.namespaces += _XMLNS.findall(buffer[pos:gt])
                        header, statement_tag = match.start(), qname
                    else:
                        if header is not None:
                            yield _header(cutter, buffer[header : match.start()], statement_tag)
                            header = None
                        if batch:
                            yield Piece("entries", cutter.parse(b"".join(batch)))
                            batch = []
                        yield Piece("end")
                elif not closing:
                    if header is not None:
                        yield _header(cutter, buffer[header : match.start()], statement_tag)
                        header = None
                    entry = match.start()
                elif entry is not None:
                    batch.append(buffer[entry : gt + 1])
                    entry = None
                    if len(batch) >= BATCH_ENTRIES:
                        yield Piece("entries", cutter.parse(b"".join(batch)))
                        batch = []
                pos = gt + 1
            if not block:
                break
            # Keep only what is still needed: an open header or entry, and the unscanned rest.
            cut = min(p for p in (pos, header, entry) if p is not None)
            buffer, pos = buffer[cut:], pos - cut
            header = None if header is None else header - cut
            entry = None if entry is None else entry - cut
    if header is not None or entry is not None:
        raise FormatError("the document ends inside a statement or an entry")


def _header(cutter: _Cutter, body: bytes, tag: bytes) -> Piece:
    wrapper = cutter.parse(body + b"</" + tag + b">")
    return Piece("header", wrapper[0] if len(wrapper) else None)
