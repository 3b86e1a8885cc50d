"""Check an XLSX sheet's size from its XML before any reader allocates it.

calamine sizes a sheet's cell grid from its dimension and its cells'
coordinates: one cell at ``XFD1048576`` asks for 16,384 x 1,048,576 cells and
the allocation failure aborts the whole process (SIGABRT, no exception). So the
chosen sheet's XML is read first with defusedxml's streaming ``iterparse``
(no DTD, no entities): its declared ``dimension`` and every row's and cell's
``r`` coordinate are checked against the limits, and so are the shared strings
(their part's expanded size and their count). Past a limit the upload is a 422
that says which limit, and no reader has seen the sheet.
"""

from __future__ import annotations

import posixpath
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO
from xml.etree.ElementTree import Element, ParseError  # noqa: S405 - types only

import defusedxml
from defusedxml.ElementTree import fromstring, iterparse

from recon.sources.options import Limits
from recon.sources.rejections import UploadRejected, problem

_CELL = re.compile(r"^\$?([A-Z]{1,3})\$?(\d{1,7})$")
_RELS = "http://schemas.openxmlformats.org/package/2006/relationships"
_OFFICE_RELS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
# The workbook's own parts are small; anything larger is not a real workbook.xml.
MAX_WORKBOOK_PART_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class Extent:
    rows: int
    columns: int


def column_number(letters: str) -> int:
    """``A`` -> 1, ``Z`` -> 26, ``AA`` -> 27, ``XFD`` -> 16384."""
    number = 0
    for ch in letters:
        number = number * 26 + (ord(ch) - ord("A") + 1)
    return number


def _coordinate(ref: str | None) -> tuple[int, int] | None:
    match = _CELL.match(ref or "")
    if match is None:
        return None
    return int(match.group(2)), column_number(match.group(1))


def _refuse(message: str, reason: str = "format") -> UploadRejected:
    return UploadRejected(
        f"The XLSX workbook is refused before reading it: {message}.",
        reason=reason,
        problems=[problem(message)],
    )


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _small_part(archive: zipfile.ZipFile, name: str) -> Element | None:
    try:
        info = archive.getinfo(name)
    except KeyError:
        return None
    if info.file_size > MAX_WORKBOOK_PART_BYTES:
        raise _refuse(f"its part {name} expands to {info.file_size} bytes")
    return fromstring(archive.read(name), forbid_dtd=True)


def sheet_parts(archive: zipfile.ZipFile) -> list[tuple[str, str]]:
    """(sheet name, part path) of every sheet, in the workbook's order."""
    workbook = _small_part(archive, "xl/workbook.xml")
    rels = _small_part(archive, "xl/_rels/workbook.xml.rels")
    if workbook is None or rels is None:
        return []
    targets = {
        r.get("Id"): r.get("Target", "")
        for r in rels
        if _local(r.tag) == "Relationship" and r.tag.startswith("{" + _RELS)
    }
    out = []
    for sheets in (e for e in workbook if _local(e.tag) == "sheets"):
        for sheet in sheets:
            target = targets.get(sheet.get(f"{{{_OFFICE_RELS}}}id"), "")
            if not target:
                continue
            path = target.lstrip("/") if target.startswith("/") else posixpath.join("xl", target)
            out.append((sheet.get("name", ""), posixpath.normpath(path)))
    return out


def _events(handle: IO[bytes]) -> Iterator[tuple[str, Element]]:
    return iterparse(handle, events=("start", "end"), forbid_dtd=True)


def sheet_extent(handle: IO[bytes], limits: Limits) -> Extent:
    """The rows and columns the sheet's XML declares and uses; refuses past the limits."""
    rows = columns = 0

    def grow(row: int, column: int) -> None:
        nonlocal rows, columns
        rows, columns = max(rows, row), max(columns, column)
        if columns > limits.max_columns:
            raise _refuse(
                f"the sheet reaches column {columns}, over the limit of {limits.max_columns}",
                "too_many_columns",
            )
        if rows > limits.max_xlsx_rows:
            raise _refuse(f"the sheet reaches row {rows}, over the limit of {limits.max_xlsx_rows}")
        if rows * columns > limits.max_xlsx_cells:
            raise _refuse(
                f"the sheet spans {rows} rows x {columns} columns, over the limit of "
                f"{limits.max_xlsx_cells} cells"
            )

    parents: list[Element] = []
    for event, elem in _events(handle):
        name = _local(elem.tag)
        if event == "start":
            parents.append(elem)
            if name == "dimension":
                for corner in (elem.get("ref") or "").split(":"):
                    found = _coordinate(corner)
                    if found:
                        grow(*found)
            elif name in ("c", "row"):
                ref = elem.get("r")
                if name == "row" and ref and ref.isdigit():
                    grow(int(ref), columns)
                elif name == "c":
                    found = _coordinate(ref)
                    if found:
                        grow(*found)
            continue
        parents.pop()
        if name == "row" and parents:
            parents[-1].remove(elem)  # a row is checked: keep the tree small
    return Extent(rows, columns)


def check_shared_strings(archive: zipfile.ZipFile, limits: Limits) -> None:
    """Refuse a shared-strings part larger or longer than the limits (readers load it whole)."""
    try:
        info = archive.getinfo("xl/sharedStrings.xml")
    except KeyError:
        return
    if info.file_size > limits.max_xlsx_shared_strings_bytes:
        raise _refuse(
            f"its shared strings expand to {info.file_size} bytes, over the limit of "
            f"{limits.max_xlsx_shared_strings_bytes}"
        )
    count = 0
    with archive.open(info) as handle:
        for event, elem in _events(handle):
            if event == "end" and _local(elem.tag) == "si":
                count += 1
                if count > limits.max_xlsx_shared_strings:
                    raise _refuse(
                        f"it has more than {limits.max_xlsx_shared_strings} shared strings"
                    )
                elem.clear()


def check_workbook(archive: zipfile.ZipFile, sheet: str | int | None, limits: Limits) -> None:
    """Check the sheet that will be read (chosen as XlsxSheet will) and the shared strings."""
    try:
        parts = sheet_parts(archive)
        chosen = _choose(parts, sheet)
        if chosen is not None and chosen in archive.namelist():
            with archive.open(chosen) as handle:
                sheet_extent(handle, limits)
        check_shared_strings(archive, limits)
    except defusedxml.DefusedXmlException as exc:
        raise _refuse("its XML declares a DTD or entities, which recon refuses") from exc
    except ParseError as exc:
        raise _refuse(f"its XML is not well-formed ({exc})") from exc


def _choose(parts: list[tuple[str, str]], sheet: str | int | None) -> str | None:
    if not parts:
        return None
    if sheet is None:
        return parts[0][1]
    if isinstance(sheet, int):
        return parts[sheet - 1][1] if 1 <= sheet <= len(parts) else None
    for name, part in parts:
        if name == sheet or name.casefold() == sheet.casefold():
            return part
    return None
