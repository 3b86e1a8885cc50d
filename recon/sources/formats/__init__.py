"""The file formats recon reads, sniffed from their content: a small registry.

``sniff`` names the format of an upload from its first bytes (the file name
only breaks a tie between CSV and XLSX). Statement formats have a reader
(``Reader``: path -> canonical records, see ``statement.py``); CSV and XLSX go
through the table pipeline in ``recon.sources.parsing``. Adding a statement
format is one module with ``LABEL``, ``sniff`` and ``read``, and one line in
``STATEMENT_FORMATS``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from recon.sources import dialect
from recon.sources.formats import bai2, camt, mt940, ofx
from recon.sources.formats.statement import Reader


@dataclass(frozen=True)
class StatementFormat:
    name: str
    label: str
    reader: Reader
    module: ModuleType


def _entry(name: str, module: ModuleType) -> StatementFormat:
    return StatementFormat(name=name, label=module.LABEL, reader=module.read, module=module)


# Tried in this order; each sniffer looks for its format's own markers only.
STATEMENT_FORMATS = (
    _entry("camt", camt),
    _entry("mt940", mt940),
    _entry("bai2", bai2),
    _entry("ofx", ofx),
)
TABLE_FORMATS = ("csv", "xlsx")
FORMAT_NAMES = (*TABLE_FORMATS, *(f.name for f in STATEMENT_FORMATS))
READABLE = dialect.READABLE


def statement_format(name: str) -> StatementFormat | None:
    """The registered statement format called ``name``, or None for CSV/XLSX."""
    return next((f for f in STATEMENT_FORMATS if f.name == name), None)


def sniff(path: Path, filename: str, head: bytes) -> str:
    """Return the format name of the upload (one of ``FORMAT_NAMES``); raise when unsupported."""
    if head.strip(b" \t\r\n\xef\xbb\xbf"):
        for entry in STATEMENT_FORMATS:
            if entry.module.sniff(head):
                return entry.name
    return dialect.sniff_format(path, filename, head)
