"""What kind of file an upload is: format, text encoding, delimiter and where the header is.

Everything here looks at the first megabyte at most, except the UTF-8 check and
the transcoding, which stream the whole file in chunks (C speed, no row loop).
"""

from __future__ import annotations

import codecs
import csv
import gc
import io
import re
import zipfile
import zlib
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from charset_normalizer import from_bytes

from recon.sources.options import DELIMITERS
from recon.sources.rejections import UploadRejected, problem

SAMPLE_BYTES = 1024 * 1024
READABLE = "CSV, XLSX, MT940/MT942, CAMT.052/.053/.054 (ISO 20022), BAI2 and OFX/QFX"
CHUNK_BYTES = 1024 * 1024
XLSX_SUFFIXES = (".xlsx", ".xlsm")
# Signatures of files people upload by mistake, so the answer can say what it saw.
MAGIC = (
    (b"%PDF", "a PDF document"),
    (b"\xd0\xcf\x11\xe0", "a legacy .xls (OLE2) workbook: save it as .xlsx or CSV"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"Rar!", "a RAR archive"),
    (b"7z\xbc\xaf", "a 7-Zip archive"),
    (b"{\\rtf", "an RTF document"),
    (b"\x7fELF", "an executable"),
)
UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
# Text has almost no control characters; binary data has plenty.
MAX_CONTROL_RATIO = 0.01
CONTROL_CHARS = re.compile("[\x00-\x08\x0b\x0e-\x1f\x7f-\x9f]")


def _format_error(what: str) -> UploadRejected:
    return UploadRejected(
        f"The file is {what}; recon reads {READABLE}.",
        reason="format",
        problems=[problem(f"unsupported file: {what}")],
    )


def read_head(path: Path, size: int = SAMPLE_BYTES) -> bytes:
    with path.open("rb") as handle:
        return handle.read(size)


def sniff_format(path: Path, filename: str, head: bytes) -> str:
    """Return ``csv`` or ``xlsx`` from the magic bytes (the name only breaks ties)."""
    if not head.strip(b" \t\r\n\xef\xbb\xbf"):
        raise UploadRejected(
            "The file is empty.", reason="empty", problems=[problem("the file has no content")]
        )
    if head.startswith(b"PK\x03\x04"):
        if _is_xlsx(path):
            return "xlsx"
        raise _format_error("a ZIP archive that is not an XLSX workbook")
    if filename.lower().endswith(XLSX_SUFFIXES):
        raise _format_error("named like an XLSX workbook but is not one (no ZIP signature)")
    for magic, what in MAGIC:
        if head.startswith(magic):
            raise _format_error(what)
    return "csv"


# What zipfile raises on damaged or unsupported archives (a newer ZIP version included).
ZIP_ERRORS = (zipfile.BadZipFile, OSError, ValueError, NotImplementedError, zlib.error, EOFError)


def _is_xlsx(path: Path) -> bool:
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
    except ZIP_ERRORS:
        return False
    return "xl/workbook.xml" in names


def detect_encoding(path: Path, head: bytes, given: str | None) -> str:
    """Return the Python codec the file decodes with: the given one, or UTF-8 else cp1252."""
    if head.startswith(UTF16_BOMS):
        return "utf-16"
    if given == "utf-16":
        # Without a byte-order mark, decoding as UTF-16 turns other text into garbage
        # (and lone surrogates that can not even be written back out).
        detected = "utf-8" if _first_invalid_utf8(path) is None else "cp1252 or latin-1"
        raise UploadRejected(
            "The file is not UTF-16: it has no UTF-16 byte-order mark and reads as "
            f"{detected}. Leave options.encoding out to detect it, or give that encoding.",
            reason="encoding",
            problems=[problem(f"not UTF-16 (reads as {detected})", column="encoding")],
        )
    if given in ("utf-8", "utf-8-sig") or given is None:
        offset = _first_invalid_utf8(path)
        if offset is None:
            return "utf-8-sig" if head.startswith(codecs.BOM_UTF8) else "utf-8"
        if given is not None:
            line = _line_of(path, offset)
            detected = detect_single_byte(path, head)
            raise UploadRejected(
                f"The file is not valid {given}: line {line} (byte {offset}) does not decode. "
                f"It reads as {detected}: leave options.encoding out to use that, or give the "
                "encoding the bank names.",
                reason="encoding",
                problems=[
                    problem(f"invalid {given} on line {line}; detected {detected}", row=line)
                ],
                detected_encoding=detected,
            )
        return detect_single_byte(path, head)
    return given


# The single-byte code pages bank exports are written in (Western, Central and Eastern
# European, Cyrillic, Greek, Turkish, Hebrew, Arabic, Baltic, Vietnamese).
SINGLE_BYTE = (
    "cp1252",
    "cp1250",
    "cp1251",
    "cp1253",
    "cp1254",
    "cp1255",
    "cp1256",
    "cp1257",
    "cp1258",
    "latin_1",
    "iso8859_2",
    "iso8859_4",
    "iso8859_5",
    "iso8859_7",
    "iso8859_9",
    "iso8859_13",
    "iso8859_15",
)
DETECTOR_CANDIDATES = 6


def detect_single_byte(path: Path, head: bytes) -> str:
    """Return the code page of a file that is not UTF-8, through charset-normalizer.

    Among its best few candidates the one that makes the most non-ASCII characters
    fewest stray symbols wins: it ranks cp1252 first for Polish cp1250 text ("Zap³ata"
    has no mess for it), where "Zapłata" is plainly the right reading. The whole file
    must decode.
    A file with only ASCII in its first megabyte and the rest undecodable as UTF-8 gets
    the detector's view of that first megabyte: cp1252 unless told otherwise.
    """
    matches = list(from_bytes(head, cp_isolation=list(SINGLE_BYTE), preemptive_behaviour=False))
    # Fewest symbols a misreading leaves first, then the detector's language coherence,
    # then Western European (French "crème" reads as "crčme" in cp1250, both plausible).
    ranked = sorted(
        enumerate(matches[:DETECTOR_CANDIDATES]),
        key=lambda item: (
            _suspicious(head, item[1].encoding),
            -round(item[1].coherence, 2),
            item[1].encoding != "cp1252",
            item[0],
        ),
    )
    for _, match in ranked:
        encoding = match.encoding
        if _decodes(path, encoding):
            # Code pages that read this text the same are one answer: name the Western
            # European one (the detector may say cp1250 for German, which reads alike).
            if head.decode(encoding, "replace") == head.decode("cp1252", "replace"):
                encoding = "cp1252" if _decodes(path, "cp1252") else encoding
            return codecs.lookup(encoding).name
    return "cp1252" if _decodes(path, "cp1252") else "latin-1"


# Characters a wrong code page produces from letters (Polish "ł" read as cp1252 is "³"):
# the Latin-1 symbol block less the symbols real text uses, and C1 controls.
_SUSPICIOUS = frozenset(ch for ch in map(chr, range(0x80, 0xC0)) if ch not in "\u00a0«»£¥§°©®€±·")


def _suspicious(head: bytes, encoding: str) -> int:
    text = head.decode(encoding, errors="replace")
    return sum(1 for ch in text if ch in _SUSPICIOUS or ch == "\ufffd")


def _line_of(path: Path, offset: int) -> int:
    """The 1-based line number of byte ``offset``."""
    line, seen = 1, 0
    with path.open("rb") as handle:
        while seen < offset and (chunk := handle.read(min(CHUNK_BYTES, offset - seen))):
            line += chunk.count(b"\n")
            seen += len(chunk)
    return line


def _first_invalid_utf8(path: Path) -> int | None:
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset = 0
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK_BYTES):
            # ASCII chunks can not be invalid; skipping them keeps the check near memcpy speed.
            if not (chunk.isascii() and decoder.getstate()[0] == b""):
                try:
                    decoder.decode(chunk)
                except UnicodeDecodeError as exc:
                    return offset + exc.start
            offset += len(chunk)
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return offset
    return None


def _decodes(path: Path, encoding: str) -> bool:
    decoder = codecs.getincrementaldecoder(encoding)()
    with path.open("rb") as handle:
        try:
            while chunk := handle.read(CHUNK_BYTES):
                decoder.decode(chunk)
        except UnicodeDecodeError:
            return False
    return True


_BARE_LF = re.compile(r"(?<!\r)\n")


def mixed_newlines(text: str) -> bool:
    """Whether the sample ends lines both with CRLF and with a bare LF.

    DuckDB's reader then returns no rows at all, and reports no error, e.g. for a
    bank export whose preamble line was written with another line ending.
    """
    return "\r\n" in text and _BARE_LF.search(text) is not None


def file_mixes_newlines(path: Path) -> bool:
    """Whether lines anywhere in the file end both with CRLF and with a bare LF.

    The sample check (mixed_newlines) only sees the first SAMPLE_BYTES; a file
    whose line endings change further on makes DuckDB's reader fail, so a file
    longer than the sample is scanned: about 0.02 s per 50 MB of LF lines, 0.1-0.15 s
    of CRLF ones (which need a two-byte count).
    Every encoding recon reads writes CR and LF as single bytes.
    """
    crlf = bare = False
    after_cr = False
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK_BYTES):
            if b"\r" not in chunk:  # the usual LF-only chunk: one memchr pass
                bare = bare or chunk.find(b"\n", 1) >= 0 or (chunk[:1] == b"\n" and not after_cr)
                crlf = crlf or (after_cr and chunk[:1] == b"\n")
            else:
                pairs = chunk.count(b"\r\n") + (1 if after_cr and chunk[:1] == b"\n" else 0)
                crlf = crlf or pairs > 0
                bare = bare or chunk.count(b"\n") > pairs
            if crlf and bare:
                return True
            after_cr = chunk[-1:] == b"\r"
    return False


def to_utf8(path: Path, encoding: str, work_dir: Path, *, unify_newlines: bool = False) -> Path:
    """Return a UTF-8 file with the same text (DuckDB reads UTF-8); transcodes when needed.

    With ``unify_newlines`` every line ending becomes LF (Python's universal newlines).
    """
    if encoding in ("utf-8", "utf-8-sig") and not unify_newlines:
        return path
    target = work_dir / "transcoded.csv"
    try:
        with (
            path.open("r", encoding=encoding, newline=None if unify_newlines else "") as source,
            target.open("w", encoding="utf-8", newline="") as out,
        ):
            while chunk := source.read(CHUNK_BYTES):
                out.write(chunk)
    except UnicodeDecodeError as exc:
        raise UploadRejected(
            f"The file does not decode as {encoding} ({exc.reason}); leave options.encoding "
            "out to detect it.",
            reason="encoding",
            problems=[problem(f"invalid {encoding} data: {exc.reason}")],
        ) from exc
    return target


def decode_sample(head: bytes, encoding: str) -> str:
    """Return the sample as text, checked to look like text rather than binary data."""
    text = codecs.getincrementaldecoder(encoding)(errors="replace").decode(head)
    text = text.removeprefix("\ufeff")
    controls = len(CONTROL_CHARS.findall(text))
    if "\x00" in text or controls > MAX_CONTROL_RATIO * max(len(text), 1):
        raise _format_error("binary data")
    return text


@dataclass(frozen=True)
class Layout:
    """Where the table starts in a CSV sample and how wide it is."""

    delimiter: str
    skip_rows: int
    header: list[str]
    width: int
    ragged: bool  # some rows are shorter than the widest: DuckDB must pad them


@contextmanager
def gc_paused() -> Iterator[None]:
    """Hold the cyclic garbage collector off while the sample's records are built.

    A megabyte of CSV is some 100,000 new strings and lists; in a web process
    (a quarter of a million objects already) the collections they trigger cost
    more than the parsing, 0.3 s at worst against 0.04 s. The records hold no
    cycles, so nothing is left for the collector; its previous state is restored.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def sample_records(text: str, delimiter: str, truncated: bool) -> list[list[str]]:
    """Return the sample's records; the last one is dropped when the sample was cut."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=False)
    records: list[list[str]] = []
    try:
        records.extend(reader)
    except csv.Error:
        # A field past csv's size limit: the records read so far still tell the layout.
        truncated = True
    if truncated and records:
        records.pop()
    return records


def sniff_delimiter(text: str, truncated: bool) -> str:
    """Return the delimiter whose commonest row width covers the most fields (ties: , ; tab |)."""
    return _sniff(text, truncated)[0]


def _sniff(text: str, truncated: bool) -> tuple[str, list[list[str]] | None]:
    """sniff_delimiter's choice and the sample's records under it (None when not read)."""
    best, best_score, best_records = ",", (0, 0, 0), None
    for delimiter in DELIMITERS:
        if delimiter not in text:
            continue  # every record would be one field wide, which never wins
        records = sample_records(text, delimiter, truncated)
        widths = Counter(len(r) for r in records if any(r))
        if not widths:
            continue
        width, count = max(widths.items(), key=lambda item: (item[1], item[0]))
        # A table is a header and at least one row as wide, so a width two rows share beats
        # one only a single row has (a lone data row full of thousands commas). Then the
        # fields in the rows of that width: a preamble or a balance footer split by a
        # decimal comma must not outvote the table itself.
        score = (min(count, 2), count * width, count) if width > 1 else (0, 0, 0)
        if score > best_score:
            best, best_score, best_records = delimiter, score, records
    return best, best_records


def _filled_width(record: list[str]) -> int:
    for index in range(len(record), 0, -1):
        if record[index - 1].strip():
            return index
    return 0


def locate_header(records: list[list[str]], skip_rows: int | None) -> int:
    """Return the index of the header record: ``skip_rows``, or the first table-wide row."""
    if skip_rows is not None:
        return skip_rows
    widths = [_filled_width(r) for r in records]
    filled = Counter(w for w in widths if w)
    if not filled:
        return 0
    typical = max(filled.items(), key=lambda item: (item[1], item[0]))[0]
    for index, record in enumerate(records):
        if widths[index] >= typical and sum(1 for cell in record if cell.strip()) >= 2:
            return index
    return 0


def csv_layout(
    text: str, truncated: bool, *, delimiter: str | None, skip_rows: int | None
) -> Layout:
    """Return the delimiter, preamble length, header and width of a CSV sample."""
    # The sniffer's records under its choice are the ones read here: the sample is read once.
    with gc_paused():
        chosen, records = (delimiter, None) if delimiter else _sniff(text, truncated)
        if records is None:
            records = sample_records(text, chosen, truncated)
    index = locate_header(records, skip_rows)
    if index >= len(records):
        raise UploadRejected(
            "The file has no header row"
            + (f" after skipping {skip_rows} rows." if skip_rows else "."),
            reason="no_header",
            problems=[problem("no header row found")],
        )
    header = [cell.strip() for cell in records[index]]
    widths = [len(r) for r in records[index + 1 :] if any(r)]
    width = max([len(header), *widths])
    ragged = any(w < width for w in widths) or len(header) < width
    return Layout(chosen, index, header, width, ragged)
