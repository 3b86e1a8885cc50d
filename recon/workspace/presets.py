"""Rule presets for the rule set editor: the rules of ``examples/`` and of the demo."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from recon.demo import RULES as DEMO_RULES


def examples_dir() -> Path:
    """examples/ beside the package in a checkout, else ./examples (absent in the image)."""
    beside = Path(__file__).resolve().parents[2] / "examples"
    return beside if beside.is_dir() else Path.cwd() / "examples"


@lru_cache(maxsize=1)
def presets() -> dict[str, dict[str, Any]]:
    """Return the presets by name: the demo's rules, then each example's ``rules.json``."""
    found: dict[str, dict[str, Any]] = {"demo: monthly bank reconciliation": DEMO_RULES}
    folder = examples_dir()
    if folder.is_dir():
        for path in sorted(folder.glob("*/rules.json")):
            try:
                found[f"example: {path.parent.name.replace('_', ' ')}"] = json.loads(
                    path.read_text(encoding="utf-8")
                )
            except (OSError, ValueError):  # a broken example must not break the page
                continue
    return found
