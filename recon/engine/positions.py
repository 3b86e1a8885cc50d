"""Where each source row goes in the results file, without sorting the results in SQL.

The results are sorted by row. Sorting two million wide result rows in DuckDB
costs more than everything else the engine does on them, so the engine numbers
the rows once after loading (a sort of one integer column in NumPy, skipped
when the source is already in row order, as ingested files are) and places
every result value straight at its row's position.

NumPy and Arrow meet here through raw buffers: ``pa.array(ndarray)`` and
``to_numpy()`` first probe for pandas, and importing it (when installed) costs
a few tenths of a second per run, more than the arrays themselves.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa


@dataclass(frozen=True)
class RowIndex:
    """The rows of one loaded side: in table scan order, and the sorted order of them."""

    scan_rows: np.ndarray
    order: np.ndarray | None  # scan position of each sorted position; None when already sorted

    @classmethod
    def from_rows(cls, rows: pa.ChunkedArray) -> RowIndex | None:
        """The index of a row column in scan order, or None when a row is missing or repeats."""
        if rows.null_count:
            return None
        scan = values(rows, np.int64)
        if scan.size < 2 or bool(np.all(scan[1:] > scan[:-1])):
            return cls(scan_rows=scan, order=None)
        order = np.argsort(scan, kind="stable")
        ordered = scan[order]
        if not bool(np.all(ordered[1:] > ordered[:-1])):
            return None
        return cls(scan_rows=scan, order=order)

    @property
    def size(self) -> int:
        return int(self.scan_rows.size)

    def sorted_rows(self) -> np.ndarray:
        return self.scan_rows if self.order is None else self.scan_rows[self.order]

    def positions(self, rows: np.ndarray) -> np.ndarray:
        """The position in row order of each given row (every row must exist)."""
        ordered = self.sorted_rows()
        if ordered.size and ordered[-1] - ordered[0] == ordered.size - 1:
            return rows - ordered[0]  # rows numbered without gaps, the usual case
        return np.searchsorted(ordered, rows)

    def to_scan_order(self, values: np.ndarray) -> np.ndarray:
        """Values given in row order, rearranged into the table's scan order."""
        if self.order is None:
            return values
        out = np.empty_like(values)
        out[self.order] = values
        return out


def values(column: pa.ChunkedArray, dtype: type[np.generic]) -> np.ndarray:
    """The values of a fixed-width Arrow column without NULLs, as a NumPy array of dtype."""
    width = np.dtype(dtype).itemsize
    parts = [
        np.frombuffer(c.buffers()[1], dtype=dtype, count=len(c), offset=c.offset * width)
        for c in column.chunks
    ]
    return np.concatenate(parts) if parts else np.empty(0, dtype=dtype)


def arrow(data: np.ndarray, kind: pa.DataType, valid: np.ndarray | None = None) -> pa.Array:
    """An Arrow array over a NumPy array of the same width (booleans are packed to bits)."""
    length = int(data.size)
    if kind == pa.bool_():
        data = np.packbits(data, bitorder="little")
    bitmap = None if valid is None else pa.py_buffer(np.packbits(valid, bitorder="little"))
    nulls = 0 if valid is None else length - int(np.count_nonzero(valid))
    return pa.Array.from_buffers(
        kind, length, [bitmap, pa.py_buffer(np.ascontiguousarray(data))], null_count=nulls
    )


def scatter(column: pa.ChunkedArray, at: np.ndarray, size: int) -> pa.Array:
    """A fixed-width column's values placed at positions at of a new array; the rest NULL.

    A NumPy scatter of the raw values and validity: several times cheaper than
    Arrow's take with a nullable index, which checks every index.
    """
    kind = column.type
    width = kind.byte_width
    # decimal128 as one 16-byte opaque value: NumPy scatters a 1-D array of them nearly
    # twenty times faster than rows of a (n, 2) array of 64-bit lanes.
    dtype = np.dtype(f"V{width}") if width == 16 else np.dtype(f"u{width}")
    parts = []
    valid_parts = []
    for chunk in column.chunks:
        n, offset = len(chunk), chunk.offset
        if n == 0:
            continue
        bitmap, data = chunk.buffers()[:2]
        parts.append(np.frombuffer(data, dtype=dtype, count=n, offset=offset * width))
        if chunk.null_count == 0:
            valid_parts.append(np.ones(n, dtype=bool))
        else:
            bits = np.unpackbits(np.frombuffer(bitmap, dtype=np.uint8), bitorder="little")
            valid_parts.append(bits[offset : offset + n].astype(bool))
    out = np.zeros(size, dtype=dtype)
    valid = np.zeros(size, dtype=bool)
    if parts:
        out[at] = np.concatenate(parts)
        valid[at] = np.concatenate(valid_parts)
    nulls = size - int(np.count_nonzero(valid))
    bitmap_out = pa.py_buffer(np.packbits(valid, bitorder="little")) if nulls else None
    return pa.Array.from_buffers(kind, size, [bitmap_out, pa.py_buffer(out)], null_count=nulls)
