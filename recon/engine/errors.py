"""Errors the engine raises; the two user-facing ones answer 422 through the API."""

from __future__ import annotations

from typing import Any

from recon.errors import ValidationError


class RulesError(ValidationError):
    """The rules are invalid; ``errors`` lists every problem as ``{field, message}``."""

    code = "invalid_rules"
    title = "Invalid rules"

    def __init__(self, problems: list[dict[str, Any]]) -> None:
        detail = "; ".join(f"{p['field']}: {p['message']}" for p in problems[:5])
        if len(problems) > 5:
            detail += f" (and {len(problems) - 5} more)"
        super().__init__(detail, errors=problems)
        self.problems = problems


class EngineError(ValidationError):
    """The job can not run on these inputs (bad source file, too many candidate pairs)."""

    code = "engine_error"
    title = "Reconciliation failed"


class EngineCancelled(Exception):
    """The caller asked the run to stop; raised between passes."""
