"""DuckDB connections as recon opens them everywhere: in memory, quiet and offline."""

from __future__ import annotations

from typing import Any

import duckdb

OFFLINE = {
    # Never fetch or load an extension at run time; what recon uses is built in.
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
}


def connect(**config: Any) -> duckdb.DuckDBPyConnection:
    """A new in-memory connection with OFFLINE and the given settings, made quiet."""
    return quiet(duckdb.connect(":memory:", config={**OFFLINE, **config}))


def quiet(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    """Turn off the connection's progress bar (each connection and cursor has its own).

    DuckDB draws it on stdout for any query over two seconds, terminal or not:
    in a web or worker process it would break the JSON log lines.
    """
    con.execute("SET enable_progress_bar = false")
    return con
