"""Rules are validated before anything runs, and every problem is listed at once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from recon.engine import RulesError, run_reconciliation, validate_rules
from recon.errors import ValidationError


def problems(rules: Any) -> dict[str, str]:
    with pytest.raises(RulesError) as info:
        validate_rules(rules)
    return {p["field"]: p["message"] for p in info.value.errors}


def test_valid_rules_are_normalised() -> None:
    rules = validate_rules(
        {
            "passes": [
                {"name": "exact", "match_on": ["Key"], "amount_tolerance": {"absolute": 0.01}},
                {
                    "match_on": ["amount"],
                    "date_window_days": 2,
                    "action": "suggest",
                    "description_min_similarity": 80,
                },
            ]
        }
    )
    first, second = rules["passes"]
    assert first["match_on"] == ["key"]
    assert first["amount_tolerance"] == {"absolute": "0.01"}  # a float tolerance stays exact
    assert first["cardinality"] == "one_to_one" and first["action"] == "match"
    assert second["name"] == "pass_2"
    assert second["description_min_similarity"] == 80.0
    assert rules["break_on"] == ["key"]


def test_every_problem_is_listed() -> None:
    found = problems(
        {
            "passes": [
                {
                    "name": "a",
                    "match_on": ["key", "colour"],
                    "amount_tolerance": {"absolute": "-1", "relative": "abc"},
                },
                {
                    "name": "a",
                    "match_on": [],
                    "date_window_days": -2,
                    "cardinality": "many",
                    "action": "approve",
                    "description_min_similarity": 120,
                    "speed": 1,
                },
            ],
            "break_on": ["nope"],
            "extra": True,
        }
    )
    assert set(found) == {
        "passes[0].match_on[1]",
        "passes[0].amount_tolerance.absolute",
        "passes[0].amount_tolerance.relative",
        "passes[1].name",
        "passes[1].match_on",
        "passes[1].date_window_days",
        "passes[1].cardinality",
        "passes[1].action",
        "passes[1].description_min_similarity",
        "passes[1].speed",
        "break_on[0]",
        "extra",
    }
    assert "negative" in found["passes[0].amount_tolerance.absolute"]
    assert "colour" in found["passes[0].match_on[1]"]
    assert "duplicate" in found["passes[1].name"]


@pytest.mark.parametrize(
    ("rules", "field"),
    [
        ({}, "passes"),
        ({"passes": []}, "passes"),
        ({"passes": [{"name": "x"}]}, "passes[0].match_on"),
        ({"passes": [{"match_on": "key"}]}, "passes[0].match_on"),
        ({"passes": [{"match_on": ["key", "key"]}]}, "passes[0].match_on[1]"),
        ({"passes": [{"match_on": ["key"], "amount_tolerance": {}}]}, "passes[0].amount_tolerance"),
        (
            {"passes": [{"match_on": ["key"], "amount_tolerance": {"relative": "2"}}]},
            "passes[0].amount_tolerance.relative",
        ),
        (
            {"passes": [{"match_on": ["key"], "date_window_days": 1.5}]},
            "passes[0].date_window_days",
        ),
        (
            {"passes": [{"match_on": ["key"], "description_min_similarity": -1}]},
            "passes[0].description_min_similarity",
        ),
        (
            {"passes": [{"match_on": ["key"], "description_min_similarity": True}]},
            "passes[0].description_min_similarity",
        ),
        (
            {"passes": [{"match_on": ["amount"], "amount_tolerance": {"absolute": "1"}}]},
            "passes[0].amount_tolerance",
        ),
        (
            {"passes": [{"match_on": ["amount"], "cardinality": "one_to_many"}]},
            "passes[0].match_on",
        ),
        ({"passes": [{"name": "break", "match_on": ["key"]}]}, "passes[0].name"),
        ({"passes": [{"match_on": ["key"]}], "break_on": "key"}, "break_on"),
    ],
)
def test_each_problem_names_its_field(rules: dict[str, Any], field: str) -> None:
    assert field in problems(rules)


def test_rules_error_is_a_422_with_the_problems() -> None:
    with pytest.raises(ValidationError) as info:
        validate_rules({"passes": [{"match_on": ["key"], "date_window_days": -1}]})
    assert info.value.status == 422
    assert info.value.to_problem()["errors"] == [
        {"field": "passes[0].date_window_days", "message": "must be between 0 and 3660, got -1"}
    ]


def test_bad_rules_fail_before_any_file_is_read(tmp_path: Path) -> None:
    # The sources do not exist: the rules error must come first.
    with pytest.raises(RulesError):
        run_reconciliation(
            tmp_path / "missing-left.parquet",
            tmp_path / "missing-right.parquet",
            {"passes": []},
            tmp_path / "out.parquet",
        )
    assert not (tmp_path / "out.parquet").exists()


def test_not_an_object() -> None:
    assert "rules" in problems(["passes"])
