"""recon's DuckDB connections never draw a progress bar and never fetch extensions."""

from __future__ import annotations

import re
from pathlib import Path

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
    ]
    assert direct == []
    assert any("quiet(con.cursor())" in text for text in sources.values())
