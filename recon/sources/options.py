"""The upload's ``options`` and ``mapping``, checked once, and the parser's limits."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from recon.sources.export_options import parse_export_options
from recon.sources.rejections import UploadRejected, problem

CANONICAL_FIELDS = ("key", "amount", "date", "currency", "description")
MAPPABLE_FIELDS = (*CANONICAL_FIELDS, "debit", "credit")
DELIMITERS = (",", ";", "\t", "|")
DECIMALS = (".", ",")
# Aliases people type for the encodings recon reads; the value is Python's codec name.
ENCODINGS = {
    "utf-8": "utf-8",
    "utf8": "utf-8",
    "utf-8-sig": "utf-8-sig",
    "utf-16": "utf-16",
    "latin-1": "latin-1",
    "latin1": "latin-1",
    "cp1252": "cp1252",
    **{f"cp{n}": f"cp{n}" for n in range(1250, 1259)},
    **{f"windows-{n}": f"cp{n}" for n in range(1250, 1259)},
    **{f"iso-8859-{n}": f"iso8859_{n}" for n in (*range(1, 11), 13, 14, 15, 16)},
    "iso-8859-1": "latin-1",
}
MAX_SKIP_ROWS = 10_000
EXCEL_SERIAL = "excel"
# The options that only make sense for one kind of file; the rest apply to CSV and XLSX.
CSV_ONLY = frozenset({"delimiter", "encoding"})
XLSX_ONLY = frozenset({"sheet"})
TABLE_FORMATS = ("csv", "xlsx")
# strptime directives that name a year, a month and a day (or a day of the year).
YEAR_DIRECTIVES = ("%Y", "%y", "%G")
MONTH_DIRECTIVES = ("%m", "%b", "%B", "%h")
DAY_DIRECTIVES = ("%d", "%e")


@dataclass(frozen=True)
class Limits:
    """What one upload may contain; past these it is refused, not truncated."""

    max_columns: int = 500
    max_field_bytes: int = 1024 * 1024
    max_problems: int = 50
    # An XLSX is a zip: cap what it may expand to so a zip bomb is refused early.
    max_xlsx_expanded_bytes: int = 4 * 1024**3
    # A sheet's grid is allocated whole by the reader: bound its rows and cells, and the
    # shared strings it loads up front (recon.sources.xlsx_guard checks them first).
    max_xlsx_rows: int = 1_048_576
    max_xlsx_cells: int = 20_000_000
    max_xlsx_shared_strings: int = 5_000_000
    max_xlsx_shared_strings_bytes: int = 512 * 1024**2
    duckdb_memory_limit: str = "400MB"


@dataclass(frozen=True)
class Options:
    delimiter: str | None = None
    encoding: str | None = None
    decimal: str | None = None
    thousands: str | None = None
    date_format: str | None = None
    debit_column: str | None = None
    credit_column: str | None = None
    skip_rows: int | None = None
    sheet: str | int | None = None
    sign_column: str | None = None
    debit_values: tuple[str, ...] | None = None
    credit_values: tuple[str, ...] | None = None
    header: bool = True
    columns: tuple[str, ...] | None = None
    skip_footer: int | None = None
    currency: str | None = None
    key_pattern: str | None = None
    key_from: str | None = None
    ragged: bool = False
    quotes: str = "strict"
    empty_amount: str = "error"


def _reject(message: str, column: str) -> UploadRejected:
    return UploadRejected(
        f"Invalid options: {message}",
        reason="bad_options",
        problems=[problem(message, column=column)],
    )


def _text(raw: dict[str, Any], name: str) -> str | None:
    value = raw.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise _reject(f"options.{name} must be a non-empty string", name)
    return value


def parse_options(raw: dict[str, Any] | None) -> Options:
    """Return the validated options; unknown keys and bad values are ``bad_options``."""
    raw = dict(raw or {})
    unknown = sorted(set(raw) - set(Options.__dataclass_fields__))
    if unknown:
        known = ", ".join(Options.__dataclass_fields__)
        raise _reject(f"unknown option(s) {', '.join(unknown)}; known: {known}", unknown[0])

    delimiter = _text(raw, "delimiter")
    if delimiter is not None:
        delimiter = {"tab": "\t", "\\t": "\t"}.get(delimiter.lower(), delimiter)
        if delimiter not in DELIMITERS:
            raise _reject("options.delimiter must be one of , ; | or tab", "delimiter")

    encoding = _text(raw, "encoding")
    if encoding is not None:
        if encoding.lower() not in ENCODINGS:
            names = "utf-8, utf-8-sig, utf-16, latin-1, cp1250 ... cp1258, iso-8859-1 ... 16"
            raise _reject(f"options.encoding must be one of {names}", "encoding")
        encoding = ENCODINGS[encoding.lower()]

    decimal = _text(raw, "decimal")
    if decimal is not None and decimal not in DECIMALS:
        raise _reject('options.decimal must be "." or ","', "decimal")
    thousands = raw.get("thousands")
    if thousands is not None:
        if not isinstance(thousands, str) or len(thousands) > 1 or thousands.isalnum():
            raise _reject("options.thousands must be one separator character or empty", "thousands")
        if thousands and thousands == (decimal or "."):
            raise _reject("options.thousands must differ from options.decimal", "thousands")

    date_format = _text(raw, "date_format")
    if date_format is not None and date_format != EXCEL_SERIAL:
        _check_date_format(date_format)

    debit, credit = _text(raw, "debit_column"), _text(raw, "credit_column")
    if (debit is None) != (credit is None):
        raise _reject("options.debit_column and options.credit_column go together", "debit_column")
    export = parse_export_options(raw)
    if export["sign_column"] and debit:
        raise _reject(
            "options.sign_column and debit/credit columns exclude each other", "sign_column"
        )

    skip_rows = raw.get("skip_rows")
    if skip_rows is not None and (
        isinstance(skip_rows, bool)
        or not isinstance(skip_rows, int)
        or not 0 <= skip_rows <= MAX_SKIP_ROWS
    ):
        raise _reject(
            f"options.skip_rows must be an integer from 0 to {MAX_SKIP_ROWS}", "skip_rows"
        )

    sheet = raw.get("sheet")
    if sheet is not None and (
        isinstance(sheet, bool) or not isinstance(sheet, str | int) or sheet == ""
    ):
        raise _reject("options.sheet is a sheet name or a 1-based sheet number", "sheet")

    return Options(
        delimiter=delimiter,
        encoding=encoding,
        decimal=decimal,
        thousands=thousands,
        date_format=date_format,
        debit_column=debit,
        credit_column=credit,
        skip_rows=skip_rows,
        sheet=sheet,
        **export,
    )


def _check_date_format(fmt: str) -> None:
    """Refuse a format that can not give a whole date (strptime would accept "%H:%M")."""
    text = fmt.replace("%%", "")
    year = any(d in text for d in YEAR_DIRECTIVES)
    month_day = any(d in text for d in MONTH_DIRECTIVES) and any(d in text for d in DAY_DIRECTIVES)
    if not (year and (month_day or "%j" in text)):
        raise _reject(
            f"options.date_format {fmt!r} does not name a year, a month and a day; use a strptime "
            'format such as "%d/%m/%Y" or "%Y-%m-%d" (or "excel" for serial numbers)',
            "date_format",
        )


def check_applicable(
    options: dict[str, Any] | None, mapping: dict[str, Any] | None, kind: str
) -> None:
    """Refuse options (and a mapping) that do not apply to a file of format ``kind``."""
    given = {k for k, v in (options or {}).items() if v is not None}
    if kind not in TABLE_FORMATS:
        if given:
            name = sorted(given)[0]
            raise _reject(
                f"options.{name} does not apply to a {kind} statement file: its layout is fixed "
                "by the format; upload it without options",
                name,
            )
        if mapping:
            raise _reject(
                f"a mapping does not apply to a {kind} statement file: its fields are fixed by "
                "the format",
                sorted(mapping)[0],
            )
        return
    wrong = XLSX_ONLY if kind == "csv" else CSV_ONLY
    for name in sorted(given & wrong):
        other = "an XLSX workbook" if kind == "csv" else "a CSV file"
        raise _reject(f"options.{name} applies to {other}, and this file is {kind.upper()}", name)


def parse_mapping(raw: dict[str, Any] | None) -> dict[str, str | None]:
    """Return the validated canonical mapping; ``date: null`` says the source has no dates.

    ``fields`` (extra named fields) is checked by ``parse_fields``.
    """
    mapping: dict[str, str | None] = {}
    for field, header in (raw or {}).items():
        if field == "fields":
            continue
        if field not in MAPPABLE_FIELDS:
            raise _reject(
                f"mapping key {field!r} is not one of {', '.join(MAPPABLE_FIELDS)} or fields",
                str(field),
            )
        if header is None or header == "":
            if field != "date":
                raise _reject(f"mapping.{field} must name a column", field)
            mapping[field] = None
        elif isinstance(header, str):
            mapping[field] = header
        else:
            raise _reject(f"mapping.{field} must be a column header (a string)", field)
    return mapping


FIELD_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
RESERVED_FIELD_NAMES = frozenset((*MAPPABLE_FIELDS, "row", "fields"))
MAX_FIELDS = 20


def parse_fields(raw: dict[str, Any] | None) -> dict[str, str]:
    """Return ``mapping.fields``: extra field name -> column header, both checked."""
    fields = (raw or {}).get("fields")
    if fields is None:
        return {}
    if not isinstance(fields, dict) or len(fields) > MAX_FIELDS:
        raise _reject(
            f'mapping.fields is an object of at most {MAX_FIELDS} fields, e.g. {{"batch": "Payout'
            ' Batch"}',
            "fields",
        )
    out: dict[str, str] = {}
    for name, header in fields.items():
        if not isinstance(name, str) or not FIELD_NAME.match(name):
            raise _reject(
                f"mapping.fields name {name!r} must be lower-case letters, digits and _ "
                "(starting with a letter, at most 40)",
                "fields",
            )
        if name in RESERVED_FIELD_NAMES:
            raise _reject(f"mapping.fields name {name!r} is a canonical field's name", "fields")
        if not isinstance(header, str) or not header:
            raise _reject(f"mapping.fields.{name} must name a column", "fields")
        out[name] = header
    return out


def parse_mapping_spec(raw: dict[str, Any] | None) -> tuple[dict[str, str | None], dict[str, str]]:
    """Return (canonical mapping, extra fields), both checked."""
    return parse_mapping(raw), parse_fields(raw)
