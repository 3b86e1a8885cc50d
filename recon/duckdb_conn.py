"""DuckDB connections as recon opens them everywhere: in memory, quiet and offline."""

from __future__ import annotations

import os
import threading
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


_shared: dict[tuple[int, tuple[tuple[str, Any], ...]], duckdb.DuckDBPyConnection] = {}
_shared_lock = threading.Lock()


def cursor(**config: Any) -> duckdb.DuckDBPyConnection:
    """A cursor on this process's shared in-memory database with these settings.

    For the short reads of a request: opening a DuckDB database costs tens of
    milliseconds, a cursor on an open one a fraction of one. A cursor is a
    connection of its own (its registered tables and temporary views are its own,
    and it may run on another thread); the settings, the memory limit included,
    are the database's, shared by the process's readers. Keyed by process so a
    forked child never uses its parent's database.
    """
    key = (os.getpid(), tuple(sorted(config.items())))
    with _shared_lock:
        base = _shared.get(key)
        if base is None:
            base = _shared[key] = connect(**config)
        return quiet(base.cursor())


def quiet(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    """Turn off the connection's progress bar (each connection and cursor has its own).

    DuckDB draws it on stdout for any query over two seconds, terminal or not:
    in a web or worker process it would break the JSON log lines.
    """
    con.execute("SET enable_progress_bar = false")
    return con
