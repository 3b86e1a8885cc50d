"""Which source column feeds which canonical field, and what the other columns are called."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from recon.sources.headers import SYNONYMS
from recon.sources.options import Options
from recon.sources.rejections import UploadRejected, problem

# Synonyms that only apply as a sign column beside one amount column.
SIGN_FIELD = "sign"
# The key is optional: a source without one uploads, and jobs that need it are refused.
REQUIRED = ("date",)
# Canonical output columns; an original header equal to one of them (ignoring case,
# as DuckDB does) gets a suffix.
RESERVED = ("row", "key", "amount", "date", "currency", "description")
PARENTHESISED = re.compile(r"\(.*?\)|\[.*?\]")
NOT_ALNUM = re.compile(r"[\W_]+")


def normalise(header: str) -> str:
    """Return the header reduced to lower-case letters and digits, for matching names."""
    text = unicodedata.normalize("NFKD", PARENTHESISED.sub("", header))
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return NOT_ALNUM.sub("", text.casefold())


@dataclass(frozen=True)
class Resolved:
    """Column indexes (0-based) per field, the mapping to report, and the extra columns."""

    fields: dict[str, int]
    used: dict[str, str | None]
    extras: list[tuple[int, str]]  # (index, output column name)
    named: dict[str, int]  # mapping.fields: extra field name -> column index

    @property
    def has_key(self) -> bool:
        return "key" in self.fields or "key_source" in self.fields


POSITION = re.compile(r"^#(\d{1,4})$")
FIELD_PREFIX = "fields."


def field_column(name: str) -> str:
    """The Parquet column of extra field ``name`` (``fields.batch``)."""
    return FIELD_PREFIX + name


def _find(headers: list[str], wanted: str) -> int | None:
    position = POSITION.match(wanted)
    if position:  # "#3": the third column, for exports whose header cell is empty
        index = int(position.group(1)) - 1
        return index if 0 <= index < len(headers) else None
    if wanted in headers:
        return headers.index(wanted)
    key = normalise(wanted)
    matches = [i for i, header in enumerate(headers) if normalise(header) == key]
    return matches[0] if matches else None


def resolve(
    headers: list[str],
    mapping: dict[str, str | None],
    options: Options,
    named: dict[str, str] | None = None,
) -> Resolved:
    """Return which column feeds each canonical field; missing required fields are refused."""
    given = dict(mapping)
    if options.debit_column:
        given.setdefault("debit", options.debit_column)
        given.setdefault("credit", options.credit_column)
    fields: dict[str, int] = {}
    missing: list[str] = []
    for field, header in given.items():
        if header is None:
            continue
        index = _find(headers, header)
        if index is None:
            missing.append(f"{field} (mapped to {header!r})")
        else:
            fields[field] = index
    extra_named: dict[str, int] = {}
    for name, header in (named or {}).items():
        index = _find(headers, header)
        if index is None:
            missing.append(f"fields.{name} (mapped to {header!r})")
        else:
            extra_named[name] = index
    if options.sign_column:
        index = _find(headers, options.sign_column)
        if index is None:
            missing.append(f"the sign column (options.sign_column {options.sign_column!r})")
        else:
            fields["sign"] = index
    if missing:
        raise _missing(headers, missing, given)
    _refuse_shared_columns(fields, headers)

    if "amount" in given and "debit" in given:
        raise UploadRejected(
            "Map either amount or debit and credit columns, not both.",
            reason="bad_options",
            problems=[problem("amount and debit/credit both mapped", column="amount")],
        )
    taken = set(fields.values())
    normalised = [normalise(h) for h in headers]
    for field, names in SYNONYMS.items():
        if field in given or (field == "amount" and "debit" in given):
            continue
        for name in names:
            index = next(
                (i for i, n in enumerate(normalised) if n == name and i not in taken), None
            )
            if index is not None:
                fields[field] = index
                taken.add(index)
                break
    if "amount" in fields:
        fields.pop("debit", None), fields.pop("credit", None)
    elif not ("debit" in fields and "credit" in fields):
        missing.append("amount (or debit and credit)")
    if "amount" not in fields:
        fields.pop(SIGN_FIELD, None)
    _key_source(fields, headers, given, options, missing)
    missing.extend(f for f in REQUIRED if f not in fields and not (f == "date" and f in given))
    if missing:
        if not fields and _looks_like_data(headers):
            raise UploadRejected(
                "The first row looks like data, not a header. If the file has no header row, "
                'set options.header to false and name its columns, e.g. "columns": '
                '["Date", "Reference", "Amount"].',
                reason="no_header",
                problems=[problem("row looks like data", row=0, value=", ".join(headers))],
            )
        raise _missing(headers, missing, given)

    shown = {f: i for f, i in fields.items() if f not in (SIGN_FIELD, "key_source")}
    used: dict[str, str | None] = {f: headers[i] for f, i in shown.items()}
    if "date" in given and given["date"] is None:
        used["date"] = None
    if "key_source" in fields:
        used["key"] = f"{options.key_pattern} in {headers[fields['key_source']]!r}"
    canonical_columns = {i for f, i in shown.items() if f not in ("debit", "credit")}
    return Resolved(fields, used, extra_columns(headers, canonical_columns), extra_named)


def _key_source(
    fields: dict[str, int],
    headers: list[str],
    given: dict[str, str | None],
    options: Options,
    missing: list[str],
) -> None:
    """With options.key_pattern, the column the key is extracted from (fields["key_source"])."""
    if not options.key_pattern:
        return
    if options.key_from:
        index = _find(headers, options.key_from)
        if index is None:
            missing.append(f"key (options.key_from {options.key_from!r})")
            return
    elif "key" in given:
        index = fields["key"]
    elif "description" in fields:
        index = fields["description"]
    else:
        missing.append("key (options.key_pattern needs options.key_from or a description)")
        return
    if "key" not in given:
        fields.pop("key", None)  # the pattern's key replaces a recognised one
    fields["key_source"] = index


def _refuse_shared_columns(fields: dict[str, int], headers: list[str]) -> None:
    """One column feeds one field: mapping key and amount to the same column is a mistake."""
    by_column: dict[int, list[str]] = {}
    for field, index in fields.items():
        by_column.setdefault(index, []).append(field)
    for index, names in by_column.items():
        if len(names) > 1:
            raise UploadRejected(
                f"The mapping sends column {headers[index]!r} to {' and '.join(names)}; "
                "each field needs its own column.",
                reason="bad_options",
                problems=[
                    problem(f"{', '.join(names)} all mapped to one column", column=headers[index])
                ],
            )


def extra_columns(headers: list[str], canonical: set[int]) -> list[tuple[int, str]]:
    """Return (index, name) of every column kept as text, names made unique ignoring case."""
    seen = set(RESERVED)
    extras: list[tuple[int, str]] = []
    for index, header in enumerate(headers):
        if index in canonical:
            continue
        base = header or f"column_{index + 1}"
        if base.casefold().startswith(FIELD_PREFIX):
            # Only mapping.fields columns carry the prefix (the engine reads them as fields).
            base = "_" + base
        name, suffix = base, 2
        while name.casefold() in seen:
            name, suffix = f"{base}_{suffix}", suffix + 1
        seen.add(name.casefold())
        extras.append((index, name))
    return extras


def _missing(
    headers: list[str], missing: list[str], given: dict[str, str | None]
) -> UploadRejected:
    found = ", ".join(repr(h) for h in headers) or "none"
    expected = "; ".join(f"{field}: {', '.join(SYNONYMS[field][:4])}..." for field in SYNONYMS)
    detail = (
        f"Required column(s) not found: {', '.join(missing)}. Headers found: {found}. "
        'Pass a mapping such as {"key": "Reference", "amount": "Amount", '
        '"date": "Date"}, or name the columns as recognised (' + expected + ")."
    )
    problems = [problem(f"missing required column: {m}", column=m.split(" ")[0]) for m in missing]
    return UploadRejected(detail, reason="missing_field", problems=problems, columns_found=headers)


DATA_LIKE = re.compile(r"^[\s$€£(+-]*\d[\d\s.,/:'-]*\)?\s*[A-Za-z]{0,3}$")


def _looks_like_data(headers: list[str]) -> bool:
    filled = [h for h in headers if h.strip()]
    return not filled or any(DATA_LIKE.match(h) for h in filled)
