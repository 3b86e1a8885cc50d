"""recon's DuckDB connections never draw a progress bar and never fetch extensions."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import pytest

from recon.duckdb_conn import connect, quiet

SLOW = "SELECT sum(hash(i)) FROM range(30000000) t(i)"


def test_a_connection_is_quiet_and_offline() -> None:
    con = connect(memory_limit="256MB")
    settings = dict(
        con.execute(
            "SELECT name, value FROM duckdb_settings() WHERE name IN ('enable_progress_bar',"
            " 'autoinstall_known_extensions', 'autoload_known_extensions', 'memory_limit')"
        ).fetchall()
    )
    assert settings["enable_progress_bar"] == "false"
    assert settings["autoinstall_known_extensions"] == "false"
    assert settings["autoload_known_extensions"] == "false"
    assert settings["memory_limit"].startswith("244")  # 256MB in MiB, the given setting kept


def test_quiet_stops_the_bar_drawn_on_stdout(capfd: pytest.CaptureFixture[str]) -> None:
    # DuckDB draws the bar on stdout even when it is not a terminal, which would
    # break the JSON log lines; progress_bar_time 0 turns it on and shows it at once.
    con = connect()
    con.execute("SET progress_bar_time = 0")
    capfd.readouterr()
    con.execute(SLOW).fetchall()
    assert "100%" in capfd.readouterr().out  # the check can see a bar
    cursor = con.cursor()  # a cursor has settings of its own
    cursor.execute("SET progress_bar_time = 0")
    quiet(cursor)
    capfd.readouterr()
    cursor.execute(SLOW).fetchall()
    assert capfd.readouterr().out == ""


def test_recon_opens_duckdb_only_through_the_helper() -> None:
    # Connections come from connect(); cursors of DuckDB connections pass through quiet().
    root = Path(__file__).resolve().parent.parent / "recon"
    sources = {p: p.read_text() for p in root.rglob("*.py") if p.name != "duckdb_conn.py"}
    direct = [
        f"{path.relative_to(root)}:{n}"
        for path, text in sources.items()
        if "duckdb" in text
        for n, line in enumerate(text.splitlines(), 1)
        if re.search(r"duckdb\.connect\(|(?<!quiet\()\b\w+\.cursor\(\)", line)
        and "# psycopg's, not DuckDB's" not in line
    ]
    assert direct == []
    assert any("quiet(con.cursor())" in text for text in sources.values())


def test_cursors_share_one_database_per_process_and_settings() -> None:
    import threading

    import pyarrow as pa

    from recon.duckdb_conn import cursor

    first, second = cursor(memory_limit="300MB"), cursor(memory_limit="300MB")
    other = cursor(memory_limit="200MB")
    first.execute("CREATE OR REPLACE TABLE shared_probe AS SELECT 42 AS x")
    assert second.execute("SELECT x FROM shared_probe").fetchone() == (42,)  # one database
    with pytest.raises(duckdb.CatalogException):
        other.execute("SELECT x FROM shared_probe")  # other settings, another database
    first.register("mine", pa.table({"a": [1]}))
    with pytest.raises(duckdb.CatalogException):
        second.execute("SELECT * FROM mine")  # what a reader registers stays its own
    settings = dict(
        second.execute(
            "SELECT name, value FROM duckdb_settings() WHERE name IN ('enable_progress_bar',"
            " 'autoload_known_extensions', 'memory_limit')"
        ).fetchall()
    )
    assert settings["enable_progress_bar"] == "false"
    assert settings["autoload_known_extensions"] == "false"
    assert settings["memory_limit"].startswith("286")  # 300MB in MiB

    found: list[object] = []

    def read() -> None:
        found.append(cursor(memory_limit="300MB").execute("SELECT x FROM shared_probe").fetchone())

    threads = [threading.Thread(target=read) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert found == [(42,)] * 8
    first.execute("DROP TABLE shared_probe")


def test_a_forked_child_opens_its_own_database() -> None:
    import multiprocessing

    from recon.duckdb_conn import cursor

    cursor(memory_limit="300MB").execute("CREATE OR REPLACE TABLE parent_probe AS SELECT 1 AS x")

    def child(queue: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
        try:
            cursor(memory_limit="300MB").execute("SELECT x FROM parent_probe")
            queue.put("parent's database")
        except duckdb.CatalogException:
            queue.put("own database")

    queue: multiprocessing.Queue = multiprocessing.get_context("fork").Queue()  # type: ignore[type-arg]
    process = multiprocessing.get_context("fork").Process(target=child, args=(queue,))
    process.start()
    process.join(30)
    assert queue.get(timeout=5) == "own database"
    cursor(memory_limit="300MB").execute("DROP TABLE parent_probe")
