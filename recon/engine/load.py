"""The DuckDB connection of one run and the two sources loaded into it.

Each side becomes a table ``l_src`` / ``r_src`` with the columns the passes
compare, already normalised: ``row``, ``k`` (key trimmed and case-folded,
NULL when empty), ``amt`` (amount at the common scale of both sides and the
tolerances, so every comparison is exact), ``d`` (date), ``ccy`` (currency
upper-cased, NULL when empty) and, only when a rule needs them, ``descr``
(the original description), ``nd`` (the normalised description) and ``f_<name>``
for each extra field (the Parquet column ``fields.<name>``, normalised like keys).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
from duckdb.sqltypes import VARCHAR

from recon import duckdb_conn
from recon.engine.errors import EngineError
from recon.engine.positions import RowIndex
from recon.engine.rules import MAX_DECIMALS, Rules
from recon.engine.sql import EXTRA_PREFIX

REQUIRED = ("row", "key", "amount", "date", "currency", "description")
# Extra fields (a source's mapping.fields) are Parquet columns with this prefix.
FIELD_PREFIX = "fields."
SPACES = " \\t\\n\\r\\x0b\\x0c"


@dataclass(frozen=True)
class Side:
    """One loaded source: its name ('left'/'right'), table, path, row count, amount scale, rows."""

    name: str
    table: str
    path: Path
    rows: int
    scale: int
    index: RowIndex

    @property
    def duplicates(self) -> str:
        """The table of the normalised keys that repeat within this side."""
        return f"{self.table[0]}_dupk"


def connect(*, memory_limit: str, temp_dir: Path, threads: int | None) -> duckdb.DuckDBPyConnection:
    """An in-memory connection that spills to temp_dir instead of outgrowing memory_limit."""
    con = duckdb_conn.connect()
    con.execute("SET memory_limit = ?", [memory_limit])
    con.execute("SET temp_directory = ?", [str(temp_dir)])
    if threads is not None:
        con.execute(f"SET threads = {int(threads)}")
    # Python's casefold is the spec; DuckDB's lower() is only the simple mapping,
    # so non-ASCII text goes through Python and ASCII stays in the vectorised path.
    con.create_function("recon_fold_key", lambda s: s.strip().casefold(), [VARCHAR], VARCHAR)
    con.create_function(
        "recon_fold_text", lambda s: " ".join(s.split()).casefold(), [VARCHAR], VARCHAR
    )
    # trim() with a character set is the costliest step of loading a side; every
    # character it strips is <= ' ', so it only runs on keys that start or end with one.
    con.execute(
        f"""CREATE MACRO nrm_key(x) AS NULLIF(CASE WHEN strlen(x) = length(x)
            THEN lower(CASE WHEN ord(left(x, 1)) <= 32 OR ord(right(x, 1)) <= 32
                            THEN trim(x, E'{SPACES}') ELSE x END)
            ELSE recon_fold_key(x) END, '')"""
    )
    con.execute(
        f"""CREATE MACRO nrm_text(x) AS NULLIF(CASE WHEN strlen(x) = length(x)
            THEN lower(trim(regexp_replace(x, '[{SPACES}]+', ' ', 'g')))
            ELSE recon_fold_text(x) END, '')"""
    )
    return con


def amount_scale(path: Path, side: str) -> int:
    """The decimal scale of the source's amount column, checking the canonical columns."""
    try:
        schema = pq.read_schema(path)
    except (OSError, pa.ArrowInvalid) as exc:
        raise EngineError(f"{side} source {path.name} is not a readable Parquet file") from exc
    missing = [c for c in REQUIRED if c not in schema.names]
    if missing:
        raise EngineError(
            f"{side} source {path.name} lacks canonical columns: {', '.join(missing)}"
        )
    amount = schema.field("amount").type
    if pa.types.is_decimal(amount):
        return int(amount.scale)
    if pa.types.is_integer(amount):
        return 0
    raise EngineError(f"{side} source {path.name}: amount must be an exact decimal, not {amount}")


def source_fields(path: Path) -> set[str]:
    """The extra field names a canonical source carries (its ``fields.<name>`` columns)."""
    try:
        names = pq.read_schema(path).names
    except (OSError, pa.ArrowInvalid):
        return set()  # amount_scale reports the unreadable file
    return {n[len(FIELD_PREFIX) :] for n in names if n.startswith(FIELD_PREFIX)}


def common_scale(left: int, right: int, rules: Rules) -> int:
    """The scale at which both sides and every absolute tolerance are exact."""
    scale = max(left, right, 2)
    for p in rules.passes:
        if p.absolute is not None:
            scale = max(scale, -min(0, int(p.absolute.normalize().as_tuple().exponent)))
    return min(scale, MAX_DECIMALS)


def needs_descriptions(rules: Rules) -> tuple[bool, bool]:
    """(raw description needed, normalised description needed) by the passes."""
    raw = any(p.min_similarity is not None for p in rules.passes)
    normalised = any("description" in p.match_on for p in rules.passes) or (
        "description" in rules.break_on
    )
    return raw, normalised


def load_side(
    con: duckdb.DuckDBPyConnection,
    name: str,
    path: Path,
    source_scale: int,
    scale: int,
    rules: Rules,
) -> Side:
    """Read one canonical Parquet file into its normalised table (amounts cast exactly)."""
    table = "l_src" if name == "left" else "r_src"
    raw, normalised = needs_descriptions(rules)
    extra = ""
    if raw:
        extra += ", CAST(description AS VARCHAR) AS descr"
    if normalised:
        extra += ", nrm_text(CAST(description AS VARCHAR)) AS nd"
    for field in rules.extra_fields:  # names validated as [a-z][a-z0-9_]*
        extra += f', nrm_key(CAST("{FIELD_PREFIX}{field}" AS VARCHAR)) AS {EXTRA_PREFIX}{field}'

    try:
        con.execute(
            f"""CREATE TABLE {table} AS SELECT CAST("row" AS BIGINT) AS "row",
                nrm_key(CAST("key" AS VARCHAR)) AS k,
                CAST(amount AS DECIMAL(38, {scale})) AS amt,
                CAST("date" AS DATE) AS d,
                NULLIF(upper(trim(CAST(currency AS VARCHAR))), '') AS ccy {extra}
                FROM read_parquet(?)""",  # noqa: S608
            [str(path)],
        )
    except duckdb.Error as exc:
        raise EngineError(f"{name} source {path.name} could not be read: {exc}") from exc
    index = RowIndex.from_rows(con.sql(f'SELECT "row" FROM {table}').to_arrow_table()["row"])  # noqa: S608
    if index is None:
        raise EngineError(f"{name} source {path.name}: the row column must be unique and set")
    side = Side(name=name, table=table, path=path, rows=index.size, scale=source_scale, index=index)
    con.execute(
        f"""CREATE TABLE {side.duplicates} AS SELECT k FROM {table} WHERE k IS NOT NULL
            GROUP BY k HAVING count(*) > 1"""  # noqa: S608
    )
    return side
