"""XLSX sheets streamed row by row (openpyxl read-only) into Arrow batches of text.

Rows come from python-calamine (Rust) when it is installed, else from openpyxl
in read-only mode; both give the same values (a test compares them).

Numbers: an XLSX cell holds an IEEE double (ECMA-376 ``xsd:double``), so the
only exact reading there is is the one Excel shows: 15 significant digits,
turned into decimal text here and parsed exactly downstream like any CSV cell.
Date cells become ISO text; Excel serial numbers are recognised by the date
parser.
"""

from __future__ import annotations

import math
import zipfile
from collections.abc import Callable, Iterator, Sequence
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from importlib import import_module
from pathlib import Path
from typing import Any, BinaryIO

import pyarrow as pa
from openpyxl import load_workbook

from recon.sources.dialect import ZIP_ERRORS, locate_header
from recon.sources.options import Limits
from recon.sources.rejections import Problem, UploadRejected, problem
from recon.sources.xlsx_guard import check_workbook

_calamine: Any
try:
    _calamine = import_module("python_calamine")
except ImportError:  # optional: openpyxl reads the same sheets, about six times slower
    _calamine = None

BATCH_ROWS = 10_000
HEAD_ROWS = 100
READERS = ("calamine", "openpyxl") if _calamine is not None else ("openpyxl",)
DEFAULT_READER = READERS[0]


def cell_text(value: Any) -> str | None:
    """Return one cell as the text a user sees in Excel (None when empty)."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        return format(Decimal(f"{value:.15g}"), "f")
    if isinstance(value, datetime):
        if value.time() == time(0):
            return value.date().isoformat()
        return value.isoformat(sep=" ")
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return str(value)
    return str(value)


def _format_error(message: str) -> UploadRejected:
    return UploadRejected(
        f"The XLSX workbook can not be read: {message}",
        reason="format",
        problems=[problem(message)],
    )


class XlsxSheet:
    """One sheet of a workbook: its header, and its data rows as Arrow batches."""

    def __init__(
        self,
        path: Path,
        *,
        sheet: str | int | None,
        skip_rows: int | None,
        limits: Limits,
        reader: str = DEFAULT_READER,
        column_names: tuple[str, ...] | None = None,
    ) -> None:
        self.limits = limits
        self.problems: list[Problem] = []
        self.rows_with_problems = 0
        self.failure: str | None = None
        _check_expansion(path, limits, sheet)
        # A file object, not the path: openpyxl refuses paths without an .xlsx suffix.
        self._handle = path.open("rb")
        self._workbook: Any = None
        try:
            names, open_sheet = (_open_calamine if reader == "calamine" else _open_openpyxl)(
                self, self._handle
            )
            self.sheet_name = _pick_sheet(names, sheet)
            self._rows = open_sheet(self.sheet_name)
            head = self._read_head()
        except UploadRejected:
            self.close()
            raise
        except BaseException as exc:  # untrusted bytes: the readers' failures are open-ended
            self.close()
            _reraise_control(exc)
            raise _format_error(type(exc).__name__) from exc
        index = locate_header(head, skip_rows)
        if index >= len(head):
            self.close()
            raise UploadRejected(
                f"Sheet {self.sheet_name!r} has no header row.",
                reason="no_header" if head else "empty",
                problems=[problem("no header row found")],
            )
        self.skip_rows = index
        # Without a header row (options.columns), the first row is data.
        given = list(column_names or ())
        self.header = given or [cell.strip() for cell in head[index]]
        self.named_width = len(self.header)
        self._pending = head[index:] if given else head[index + 1 :]
        self.width = max([len(self.header), *(len(r) for r in head[index:])])
        self.header += [""] * (self.width - len(self.header))

    def _read_head(self) -> list[list[str]]:
        head: list[list[str]] = []
        for values in self._rows:
            head.append(_trimmed([cell_text(v) or "" for v in values]))
            if len(head) >= HEAD_ROWS:
                break
        return head

    def schema(self) -> pa.Schema:
        fields = [pa.field("row", pa.int64())]
        fields += [pa.field(f"c{i + 1}", pa.string()) for i in range(self.width)]
        return pa.schema(fields)

    def batches(self) -> Iterator[pa.RecordBatch]:
        """Yield the data rows; ``row`` is the sheet row counted from the header (1 = next)."""
        width = self.width
        number = 0
        columns: list[list[str | None]] = [[] for _ in range(width)]
        numbers: list[int] = []

        def rows() -> Iterator[list[str | None]]:
            for record in self._pending:
                yield [cell or None for cell in record]
            try:
                for values in self._rows:
                    yield [cell_text(v) for v in values]
            except BaseException as exc:  # a corrupt part found mid-sheet; reported after the load
                _reraise_control(exc)
                self.failure = type(exc).__name__

        for cells in rows():
            number += 1
            if len(cells) > width:
                if any(c is not None for c in cells[width:]):
                    self._overflow(number, len(cells))
                cells = cells[:width]
            if all(c is None for c in cells):
                continue
            numbers.append(number)
            for i in range(width):
                columns[i].append(cells[i] if i < len(cells) else None)
            if len(numbers) >= BATCH_ROWS:
                yield self._batch(numbers, columns)
                numbers, columns = [], [[] for _ in range(width)]
        if numbers:
            yield self._batch(numbers, columns)

    def _batch(self, numbers: list[int], columns: list[list[str | None]]) -> pa.RecordBatch:
        arrays = [pa.array(numbers, pa.int64())] + [pa.array(c, pa.string()) for c in columns]
        return pa.RecordBatch.from_arrays(arrays, schema=self.schema())

    def _overflow(self, number: int, cells: int) -> None:
        self.rows_with_problems += 1
        if len(self.problems) < self.limits.max_problems:
            self.problems.append(
                problem(
                    f"row has a value in column {cells} but the header has {self.width} columns",
                    row=number,
                )
            )

    def reader(self) -> pa.RecordBatchReader:
        return pa.RecordBatchReader.from_batches(self.schema(), self.batches())

    def close(self) -> None:
        if self._workbook is not None and hasattr(self._workbook, "close"):
            self._workbook.close()
        self._handle.close()


def _open_openpyxl(
    owner: XlsxSheet, handle: BinaryIO
) -> tuple[list[str], Callable[[str], Iterator[Sequence[Any]]]]:
    workbook = load_workbook(handle, read_only=True, data_only=True)
    owner._workbook = workbook

    def open_sheet(name: str) -> Iterator[Sequence[Any]]:
        worksheet = workbook[name]
        if not hasattr(worksheet, "iter_rows"):
            raise _format_error(f"sheet {name!r} is a chart, not a table")
        return worksheet.iter_rows(values_only=True)

    return list(workbook.sheetnames), open_sheet


def _open_calamine(
    owner: XlsxSheet, handle: BinaryIO
) -> tuple[list[str], Callable[[str], Iterator[Sequence[Any]]]]:
    workbook = _calamine.CalamineWorkbook.from_filelike(handle)
    owner._workbook = workbook

    def open_sheet(name: str) -> Iterator[Sequence[Any]]:
        return iter(workbook.get_sheet_by_name(name).iter_rows())

    return list(workbook.sheet_names), open_sheet


def _reraise_control(exc: BaseException) -> None:
    # BaseException is caught because a Rust panic in calamine arrives as pyo3's
    # PanicException, which is not an Exception; interpreter control flow still passes.
    if isinstance(exc, KeyboardInterrupt | SystemExit | GeneratorExit):
        raise exc


def _trimmed(record: list[str]) -> list[str]:
    end = len(record)
    while end and not record[end - 1]:
        end -= 1
    return record[:end]


def _pick_sheet(names: list[str], wanted: str | int | None) -> str:
    if not names:
        raise _format_error("the workbook has no sheets")
    if wanted is None:
        return names[0]
    if isinstance(wanted, int):
        if 1 <= wanted <= len(names):
            return names[wanted - 1]
    else:
        for name in names:
            if name == wanted or name.casefold() == wanted.casefold():
                return name
    raise UploadRejected(
        f"Sheet {wanted!r} not found; the workbook has: {', '.join(names)}.",
        reason="bad_options",
        problems=[problem(f"no sheet {wanted!r}", column="sheet")],
        sheets=names,
    )


def _check_expansion(path: Path, limits: Limits, sheet: str | int | None) -> None:
    try:
        with zipfile.ZipFile(path) as archive:
            expanded = sum(info.file_size for info in archive.infolist())
            if expanded > limits.max_xlsx_expanded_bytes:
                raise _format_error(
                    f"it expands to {expanded} bytes, over the limit of "
                    f"{limits.max_xlsx_expanded_bytes}"
                )
            check_workbook(archive, sheet, limits)
    except ZIP_ERRORS as exc:
        raise _format_error("not a valid ZIP container") from exc
