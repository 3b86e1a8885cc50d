"""Turn an uploaded file into the canonical source Parquet.

``ingest_file`` is the only entry point. The format is sniffed from the content
(``recon.sources.formats``): bank statements (MT940, CAMT, BAI2, OFX) go
through their reader, CSV and XLSX through the table pipeline here. The file
is loaded as text into DuckDB
(``read_csv`` with every column VARCHAR, or openpyxl rows streamed as Arrow
batches), checked and converted with set-based SQL, and written with ``COPY``.
Amounts never become floats. Anything wrong with the file raises
``UploadRejected``; then nothing is left at ``out_path`` and the temporary
directory is gone.

Decisions: ``key``, ``amount`` (or debit and credit) and ``date`` are required
(``mapping={"date": None}`` declares a source without dates); a header with no
data rows is ``empty``; debit/credit columns are also kept as text columns;
rows whose cells are all empty are skipped (their numbers are not reused).
"""

# ruff: noqa: S608 - SQL here is composed from generated column names (c1..cN) and
# literals quoted by sql_string(); no uploaded text is spliced in unquoted.

from __future__ import annotations

import os
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from recon.duckdb_conn import connect
from recon.sources import dialect, formats
from recon.sources.amounts import sql_string
from recon.sources.canonical import Canonical, col
from recon.sources.formats.statement import write_statements
from recon.sources.mapping import Resolved, resolve
from recon.sources.options import (
    Limits,
    Options,
    check_applicable,
    parse_mapping_spec,
    parse_options,
)
from recon.sources.rejections import UploadRejected, problem
from recon.sources.table_rows import Table, create_records_view
from recon.sources.xlsx import XlsxSheet

__all__ = ["IngestResult", "Limits", "UploadRejected", "ingest_file"]

# A line may hold several fields near the field limit; past this DuckDB refuses it.
LINE_LIMIT_FIELDS = 8
MIN_LINE_BYTES = 2 * 1024 * 1024


@dataclass
class IngestResult:
    row_count: int
    detected_options: dict[str, Any]
    mapping: dict[str, str | None]
    schema: list[dict[str, str]]
    amount_scale: int
    sums: dict[str, str]
    min_date: str | None
    max_date: str | None
    columns: list[str] = field(default_factory=list)
    statements: list[dict[str, Any]] = field(default_factory=list)
    skipped_lines: list[dict[str, Any]] = field(default_factory=list)
    fields: list[str] = field(default_factory=list)  # mapping.fields, as fields.<name> columns
    has_key: bool = True


@dataclass
class _Loaded:
    headers: list[str]
    resolved: Resolved
    detected: dict[str, Any]
    skipped: list[dict[str, Any]]
    width: int  # the columns the header names


def ingest_file(
    src_path: str | Path,
    out_path: str | Path,
    *,
    filename: str,
    mapping: dict[str, Any] | None = None,
    options: dict[str, Any] | None = None,
    limits: Limits | None = None,
    temp_dir: str | Path | None = None,
) -> IngestResult:
    """Write the canonical Parquet of an uploaded file to ``out_path`` and describe it."""
    limits = limits or Limits()
    opts = parse_options(options)
    wanted, named = parse_mapping_spec(mapping)
    src, out = Path(src_path), Path(out_path)
    head = dialect.read_head(src)
    kind = formats.sniff(src, filename, head)
    check_applicable(options, mapping, kind)
    partial = out.with_name(f".{out.name}.{uuid.uuid4().hex}.partial")
    statement = formats.statement_format(kind)
    if statement is not None:
        return _ingest_statement(statement, src, out, partial, limits, temp_dir)
    with tempfile.TemporaryDirectory(prefix="recon-ingest-", dir=temp_dir) as work:
        con = connect(
            temp_directory=work,
            memory_limit=limits.duckdb_memory_limit,
            preserve_insertion_order=True,
        )
        try:
            loaded = _load(con, src, kind, head, (wanted, named), opts, limits, Path(work))
            canonical = Canonical(
                con, loaded.resolved, loaded.headers, opts, limits, header_width=loaded.width
            )
            (count,) = canonical.one("SELECT count(*) FROM src")
            if not count:
                raise UploadRejected(
                    "The file has a header but no data rows.",
                    reason="empty",
                    problems=[problem("no data rows", value=", ".join(loaded.headers))],
                )
            canonical.analyse(rows=count)
            summary = canonical.write(partial)
            schema = [
                {"name": name, "type": kind}
                for name, kind, *_ in con.execute(
                    f"DESCRIBE SELECT * FROM read_parquet({sql_string(str(partial))})"
                ).fetchall()
            ]
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        finally:
            con.close()
    os.replace(partial, out)
    detected = {
        **given_options(options),
        **loaded.detected,
        "decimal": canonical.grammar.decimal,
        "thousands": opts.thousands,
        "date_format": canonical.date_format,
    }
    return IngestResult(
        row_count=summary.row_count,
        detected_options=detected,
        mapping=loaded.resolved.used,
        schema=schema,
        amount_scale=canonical.scale,
        sums=summary.sums,
        min_date=summary.min_date,
        max_date=summary.max_date,
        columns=[name for _, name in canonical.extra_columns()],
        skipped_lines=loaded.skipped,
        fields=sorted(loaded.resolved.named),
        has_key=loaded.resolved.has_key,
    )


def given_options(options: dict[str, Any] | None) -> dict[str, Any]:
    """The options the upload gave (None values dropped), kept on the source as given."""
    return {k: v for k, v in (options or {}).items() if v is not None}


def _ingest_statement(
    statement: formats.StatementFormat,
    src: Path,
    out: Path,
    partial: Path,
    limits: Limits,
    temp_dir: str | Path | None,
) -> IngestResult:
    """Write the canonical Parquet of a bank statement file through its format's reader."""
    with tempfile.TemporaryDirectory(prefix="recon-ingest-", dir=temp_dir) as work:
        try:
            result = write_statements(
                statement.reader, src, partial, Path(work), label=statement.label, limits=limits
            )
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
    os.replace(partial, out)
    return IngestResult(
        row_count=result.row_count,
        detected_options={"format": statement.name},
        mapping=dict(STATEMENT_MAPPING),
        schema=result.schema,
        amount_scale=result.amount_scale,
        sums=result.sums,
        min_date=result.min_date,
        max_date=result.max_date,
        columns=result.columns,
        statements=result.statements,
    )


# What a statement reader fills each canonical field from, for the source's description.
STATEMENT_MAPPING = {
    "key": "bank reference",
    "amount": "signed amount",
    "date": "booking date (else value date)",
    "currency": "currency",
    "description": "transaction text",
}


def _load(
    con: duckdb.DuckDBPyConnection,
    src: Path,
    kind: str,
    head: bytes,
    wanted: tuple[dict[str, str | None], dict[str, str]],
    opts: Options,
    limits: Limits,
    work: Path,
) -> _Loaded:
    """Load the file into the view ``src(row, c1 .. cN)``; return its header and mapping."""
    if kind == "xlsx":
        return _load_xlsx(con, src, wanted, opts, limits)
    encoding = dialect.detect_encoding(src, head, opts.encoding)
    text = dialect.decode_sample(head, encoding)
    truncated = len(head) == dialect.SAMPLE_BYTES
    layout = dialect.csv_layout(
        text,
        truncated=truncated,
        delimiter=opts.delimiter,
        skip_rows=opts.skip_rows,
    )
    # Without a header row, the first record is data and the columns are named by options.
    names = list(opts.columns) if opts.columns else layout.header
    width = max(layout.width, len(names))
    _check_width(width, limits)
    headers = names + [""] * (width - len(names))
    resolved = resolve(headers, wanted[0], opts, wanted[1])
    header_lines = layout.skip_rows + (1 if opts.header else 0)
    mixed = dialect.mixed_newlines(text) or (truncated and dialect.file_mixes_newlines(src))
    utf8 = dialect.to_utf8(src, encoding, work, unify_newlines=mixed)
    line_limit = max(MIN_LINE_BYTES, LINE_LIMIT_FIELDS * limits.max_field_bytes)
    # DuckDB pads short rows only in its single-threaded reader: use it only when needed.
    ragged = layout.ragged or width > layout.width
    columns = "{" + ", ".join(f"'{col(i)}': 'VARCHAR'" for i in range(width)) + "}"
    # quotes "lenient": DuckDB's non-strict mode reads quotes left unescaped inside fields.
    strict = opts.quotes != "lenient"
    _create_raw(
        con,
        f"""read_csv({sql_string(str(utf8))}, delim={sql_string(layout.delimiter)},
            quote='"', escape='"', header=false, skip={header_lines},
            columns={columns}, auto_detect=false, store_rejects=true, ignore_errors=true,
            max_line_size={line_limit}, buffer_size={4 * line_limit},
            null_padding={ragged}, parallel={not ragged}, strict_mode={strict})""",
        headers,
        limits,
        first_data_line=header_lines + 1,
    )
    table = Table("rowid + 1", width, header_lines + 1, layout.delimiter)
    skipped = create_records_view(con, table, resolved, opts)
    detected = {
        "format": "csv",
        "delimiter": layout.delimiter,
        "encoding": encoding,
        "skip_rows": layout.skip_rows,
        "sheet": None,
    }
    return _Loaded(headers, resolved, detected, skipped, len(names))


def _check_width(width: int, limits: Limits) -> None:
    if width > limits.max_columns:
        raise UploadRejected(
            f"The file has {width} columns, over the limit of {limits.max_columns}.",
            reason="too_many_columns",
            problems=[problem(f"{width} columns (limit {limits.max_columns})", row=0)],
        )


def _create_raw(
    con: duckdb.DuckDBPyConnection,
    reader_sql: str,
    headers: list[str],
    limits: Limits,
    *,
    first_data_line: int,
) -> None:
    """CREATE TABLE raw from read_csv; malformed lines are reported, not skipped."""
    try:
        con.execute(f"CREATE TABLE raw AS SELECT * FROM {reader_sql}")
    except duckdb.InvalidInputException as exc:
        raise _csv_error(exc) from exc
    (total,) = con.execute("SELECT count(*) FROM reject_errors").fetchone() or (0,)
    if not total:
        return
    rejects = con.execute(
        "SELECT line, column_idx, error_type, csv_line, error_message FROM reject_errors "
        f"ORDER BY line, column_idx LIMIT {limits.max_problems}"
    ).fetchall()
    problems = []
    oversized = False
    for line, column_idx, error_type, csv_line, message in rejects:
        oversized = oversized or str(error_type) == "LINE SIZE OVER MAXIMUM"
        column = None
        if column_idx and 0 < column_idx <= len(headers):
            column = headers[column_idx - 1] or col(column_idx - 1)
        problems.append(
            problem(
                f"line {line}: {message}",
                row=int(line) - first_data_line + 1,
                column=column,
                value=(csv_line or "").strip("\r\n") or None,
            )
        )
    raise UploadRejected(
        f"{total} line(s) of the file are not well-formed CSV; nothing was stored.",
        reason="field_too_large" if oversized else "format",
        problems=problems,
        total=int(total),
        max_problems=limits.max_problems,
    )


def _csv_error(exc: duckdb.Error) -> UploadRejected:
    # DuckDB's message goes on to list the reader's settings, server paths included.
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    summary = " ".join(ln for ln in lines[:2] if not ln.startswith("file ="))
    return UploadRejected(
        f"The file could not be read as CSV: {summary}",
        reason="format",
        problems=[problem(summary)],
    )


def _load_xlsx(
    con: duckdb.DuckDBPyConnection,
    src: Path,
    wanted: tuple[dict[str, str | None], dict[str, str]],
    opts: Options,
    limits: Limits,
) -> _Loaded:
    sheet = XlsxSheet(
        src, sheet=opts.sheet, skip_rows=opts.skip_rows, limits=limits, column_names=opts.columns
    )
    try:
        _check_width(sheet.width, limits)
        resolved = resolve(sheet.header, wanted[0], opts, wanted[1])
        stream = sheet.reader()
        con.register("xlsx_stream", stream)
        con.execute("CREATE TABLE raw AS SELECT * FROM xlsx_stream")
        con.unregister("xlsx_stream")
    finally:
        sheet.close()
    if sheet.failure:
        raise UploadRejected(
            f"The XLSX workbook can not be read: {sheet.failure}",
            reason="format",
            problems=[problem(sheet.failure)],
        )
    if sheet.problems:
        raise UploadRejected(
            f"{sheet.rows_with_problems} row(s) have values beyond the header's columns.",
            reason="format",
            problems=sheet.problems,
            total=sheet.rows_with_problems,
            max_problems=limits.max_problems,
        )
    first = sheet.skip_rows + (1 if opts.columns is None else 0) + 1
    skipped = create_records_view(con, Table("row", sheet.width, first, " | "), resolved, opts)
    detected = {
        "format": "xlsx",
        "delimiter": None,
        "encoding": None,
        "skip_rows": sheet.skip_rows,
        "sheet": sheet.sheet_name,
    }
    return _Loaded(sheet.header, resolved, detected, skipped, sheet.named_width)
