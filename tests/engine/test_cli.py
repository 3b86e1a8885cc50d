"""``recon reconcile``: files in, results.parquet + summary.json (+ CSVs) out, exit codes."""

from __future__ import annotations

import csv
import importlib.util
import json
import re
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from recon.engine.cli import main
from tests.engine.engine_helpers import reconcile_card_settlements, write_source

RULES = {
    "passes": [
        {"name": "exact", "match_on": ["key"]},
        {"name": "tolerant", "match_on": ["key"], "amount_tolerance": {"absolute": "1"}},
    ],
    "break_on": ["key"],
}


@pytest.fixture
def inputs(tmp_path: Path) -> tuple[Path, Path, Path]:
    left = write_source(
        tmp_path / "left.parquet",
        [
            {"key": "A", "amount": "10.00", "description": "alpha"},
            {"key": "B", "amount": "20.00"},
            {"key": "C", "amount": "30.00"},
            {"key": "D", "amount": "40.00"},
        ],
    )
    right = write_source(
        tmp_path / "right.parquet",
        [
            {"key": "A", "amount": "10.00"},
            {"key": "B", "amount": "20.50"},
            {"key": "C", "amount": "35.00"},
        ],
    )
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps(RULES))
    return left, right, rules


def test_reconcile_writes_results_summary_and_csvs(
    inputs: tuple[Path, Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    left, right, rules = inputs
    out = tmp_path / "out"
    code = main(
        [
            "reconcile",
            str(left),
            str(right),
            "--rules",
            str(rules),
            "--out",
            str(out),
            "--csv",
            "--memory-limit",
            "256MB",
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "exact" in printed and "tolerant" in printed and "match rate" in printed
    summary = json.loads((out / "summary.json").read_text())
    assert summary["left"]["by_status"]["matched"]["rows"] == 2
    assert summary["breaks"] == 1
    assert pq.read_table(out / "results.parquet").num_rows == 7
    with (out / "matched.csv").open() as fh:
        matched = list(csv.DictReader(fh))
    assert [(r["side"], r["row"], r["key"], r["pass"]) for r in matched] == [
        ("left", "1", "A", "exact"),
        ("left", "2", "B", "tolerant"),
        ("right", "1", "A", "exact"),
        ("right", "2", "B", "tolerant"),
    ]
    with (out / "unmatched.csv").open() as fh:
        assert [r["key"] for r in csv.DictReader(fh)] == ["D"]
    with (out / "break.csv").open() as fh:
        assert {r["diff_fields"] for r in csv.DictReader(fh)} == {"amount"}


@pytest.mark.parametrize(
    ("rules_text", "message"),
    [
        ('{"passes": []}', "needs at least one pass"),
        ("{not json", "not valid JSON"),
    ],
)
def test_bad_rules_exit_2_with_the_message(
    inputs: tuple[Path, Path, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    rules_text: str,
    message: str,
) -> None:
    left, right, rules = inputs
    rules.write_text(rules_text)
    code = main(
        ["reconcile", str(left), str(right), "--rules", str(rules), "--out", str(tmp_path / "out")]
    )
    assert code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out" / "results.parquet").exists()


def test_missing_input_and_bad_options_exit_2(
    inputs: tuple[Path, Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    left, _right, rules = inputs
    code = main(
        [
            "reconcile",
            str(left),
            str(tmp_path / "nope.csv"),
            "--rules",
            str(rules),
            "--out",
            str(tmp_path / "out"),
        ]
    )
    assert code == 2 and "does not exist" in capsys.readouterr().err
    code = main(
        [
            "reconcile",
            str(left),
            str(left),
            "--rules",
            str(rules),
            "--out",
            str(tmp_path / "out"),
            "--left-options",
            "[1]",
        ]
    )
    assert code == 2 and "--left-options must be a JSON object" in capsys.readouterr().err


@pytest.mark.skipif(
    importlib.util.find_spec("recon.sources.parsing") is None,
    reason="the sources parser (recon.sources.parsing) is not there yet",
)
def test_csv_inputs_go_through_the_sources_parser(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    code = reconcile_card_settlements(out, "--left-options", '{"date_format": "%Y-%m-%d"}')
    assert code == 0, capsys.readouterr().err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["left"]["by_status"]["matched"]["rows"] == 5
    assert summary["breaks"] == 3


def test_csv_parse_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("recon.sources.parsing")
    bad = tmp_path / "bad.csv"
    bad.write_text("reference,amount,date\nA,not-a-number,2024-01-01\n")
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps(RULES))
    code = main(
        ["reconcile", str(bad), str(bad), "--rules", str(rules), "--out", str(tmp_path / "out")]
    )
    assert code == 2
    assert "recon:" in capsys.readouterr().err


def test_help_explains_every_argument_and_its_example_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["reconcile", "--help"])
    assert exited.value.code == 0
    text = capsys.readouterr().out
    # Every argument has words of help after its name (argparse may wrap them).
    blocks = re.split(r"\n  (?=\S)", text.split("positional arguments:", 1)[1].split("example:")[0])
    described = {b.split()[0]: b.split()[1:] for b in blocks if b.strip()}
    for name in ("left", "right", "--rules", "--out", "--csv", "--left-options", "--right-options"):
        metavar = name.lstrip("-").replace("-", "_").upper()
        assert [w for w in described[name] if w != metavar], name
    for name in ("--memory-limit", "--threads"):
        assert len(described[name]) > 2, name
    example = " ".join(text.split("example: ", 1)[1].split())
    command = example.split()
    assert command[:2] == ["recon", "reconcile"] and command[-3::2] == ["--out", "--csv"]
    # The example runs as printed, from the repository root, into a temporary OUT.
    monkeypatch.chdir(Path(__file__).resolve().parents[2])
    out = tmp_path / "out"
    assert main([*command[1:-3], "--out", str(out), "--csv"]) == 0
    assert (out / "results.parquet").is_file() and (out / "matched.csv").is_file()


def test_two_bad_csv_files_parsed_together_report_the_left_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Both sides are parsed at once; the left file's problem is the one reported, as in turn.
    left = tmp_path / "left.csv"
    left.write_text("reference,amount,date\nA,not-a-number,2024-01-01\n")
    right = tmp_path / "right.csv"
    right.write_text("reference,amount,date\nB,12.00,someday\n")
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps(RULES))
    out = tmp_path / "out"
    code = main(["reconcile", str(left), str(right), "--rules", str(rules), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2
    assert "not-a-number" in err and "someday" not in err
    assert not (out / "results.parquet").exists()


def test_reconcile_in_partitions_writes_the_same_results(
    inputs: tuple[Path, Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    left, right, rules = inputs
    common = ["reconcile", str(left), str(right), "--rules", str(rules), "--out"]
    assert main([*common, str(tmp_path / "one")]) == 0
    assert main([*common, str(tmp_path / "parts"), "--partitions", "3", "--processes", "1"]) == 0
    assert "3 partitions" in capsys.readouterr().out
    one, parts = (tmp_path / "one" / "results.parquet"), (tmp_path / "parts" / "results.parquet")
    assert one.read_bytes() == parts.read_bytes()
    summary = json.loads((tmp_path / "parts" / "summary.json").read_text())
    assert summary["partitions"] == 3 and summary["breaks"] == 1


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (["--partitions", "0"], "--partitions must be between 1 and 256"),
        (["--partitions", "2", "--processes", "0"], "--processes must be at least 1"),
    ],
)
def test_reconcile_refuses_bad_partition_options(
    inputs: tuple[Path, Path, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    option: list[str],
    message: str,
) -> None:
    left, right, rules = inputs
    args = ["reconcile", str(left), str(right), "--rules", str(rules), "--out", str(tmp_path / "o")]
    assert main([*args, *option]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "o" / "results.parquet").exists()
