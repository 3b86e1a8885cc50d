"""The dependency between recon and its instrumentation runs one way, and the domain errors
need no web framework: both read from the source, as an import would see it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def imported_modules(path: Path) -> set[str]:
    """Every module ``path`` imports, at the top or inside a function."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


@pytest.mark.parametrize(
    "path", sorted((ROOT / "instrumentation").glob("*.py")), ids=lambda p: p.name
)
def test_instrumentation_imports_nothing_from_the_app(path: Path) -> None:
    upward = {m for m in imported_modules(path) if m == "recon" or m.startswith("recon.")}
    assert not upward, f"{path.name} imports {sorted(upward)}: take it as a parameter instead"


def test_domain_errors_need_no_flask_nor_instrumentation() -> None:
    modules = imported_modules(ROOT / "recon" / "errors.py")
    assert not {m for m in modules if m.split(".")[0] in {"flask", "werkzeug", "instrumentation"}}


def test_the_http_handlers_live_beside_the_errors() -> None:
    from recon import errors, problems

    assert not hasattr(errors, "register_error_handlers")
    assert callable(problems.register_error_handlers)
    assert problems.metrics_unauthorized() == {
        "type": "https://recon.dev/problems/metrics_unauthorized",
        "title": "Authentication required",
        "status": 401,
        "detail": "A valid metrics bearer token is required.",
        "code": "metrics_unauthorized",
    }
