"""Why an upload was refused: the 422 error and its row problems."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypedDict

from recon.errors import ValidationError

# The reason is a metric label (reconciliation_upload_rejected_total{reason}):
# keep the set small and fixed.
REASONS = frozenset(
    {
        "format",
        "empty",
        "no_header",
        "missing_field",
        "bad_amount",
        "bad_date",
        "bad_currency",
        "ambiguous_date",
        "too_many_columns",
        "field_too_large",
        "encoding",
        "bad_options",
        "ragged_row",
        "disk_full",
    }
)

# A problem's value is cut to this many characters: it is shown, not stored.
MAX_VALUE_CHARS = 200


class Problem(TypedDict):
    row: int | None
    column: str | None
    value: str | None
    message: str


def problem(
    message: str, *, row: int | None = None, column: str | None = None, value: Any = None
) -> Problem:
    """Return one row problem, with its value shortened for display."""
    text = None if value is None else str(value)
    if text is not None and len(text) > MAX_VALUE_CHARS:
        text = text[:MAX_VALUE_CHARS] + "..."
    return {"row": row, "column": column, "value": text, "message": message}


class UploadRejected(ValidationError):
    """422: the file can not become a source; nothing was stored.

    ``reason`` is one of ``REASONS``; ``errors`` holds at most ``max_problems``
    problems and ``total`` counts all of them (also in the body as ``total_errors``).
    """

    code = "upload_rejected"
    title = "Upload rejected"

    def __init__(
        self,
        detail: str,
        *,
        reason: str,
        problems: Sequence[Problem] = (),
        total: int | None = None,
        max_problems: int = 50,
        **extra: Any,
    ) -> None:
        if reason not in REASONS:
            raise ValueError(f"unknown rejection reason {reason!r}")
        shown = list(problems)[:max_problems]
        count = len(problems) if total is None else total
        super().__init__(detail, errors=shown, reason=reason, total_errors=count, **extra)
        self.reason = reason
        self.total = count
