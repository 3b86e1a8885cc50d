"""A project's review controls: its reason codes, write-off limits and when a write-off
needs a second person's approval (the four-eyes principle).

- ``reason_codes``: what people may give when they resolve an exception (the default
  is ``DEFAULT_REASON_CODES``). The system's own codes (``matched_by_job``,
  ``matched_by_suggestion``, ``matched_manually``) are always known.
- ``write_off_limit``: per currency code ('' for records without one), the largest
  write-off (absolute, exact decimal) that ``over_limit`` lets through unapproved. A
  currency without a limit has a limit of 0: every write-off in it needs approval.
- ``require_approval``: ``never``, ``over_limit`` or ``always``.

A write-off is what a person declares explained without a counterpart that balances
it: the difference of a manual match given a ``write_off_reason``, or the amount of an
exception resolved with ``written_off``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from recon.audit.service import SYSTEM, Actor, record
from recon.db_types import SessionLike
from recon.projects.models import Project

DEFAULT_REASON_CODES = (
    "timing_difference",
    "bank_fee",
    "fx_difference",
    "rounding",
    "duplicate",
    "data_entry_error",
    "missing_record",
    "written_off",
    "matched_manually",
    "other",
)
SYSTEM_REASON_CODES = ("matched_by_job", "matched_by_suggestion", "matched_manually")
WRITE_OFF = "written_off"


class RequireApproval(enum.StrEnum):
    never = "never"
    over_limit = "over_limit"
    always = "always"


@dataclass(frozen=True)
class ProjectSettings:
    reason_codes: tuple[str, ...] = DEFAULT_REASON_CODES
    write_off_limit: dict[str, Decimal] = field(default_factory=dict)
    require_approval: RequireApproval = RequireApproval.never

    def needs_approval(self, write_off: Decimal, currency: str) -> bool:
        """Whether a write-off of ``write_off`` in ``currency`` waits for a second person."""
        if write_off == 0 or self.require_approval == RequireApproval.never:
            return False
        if self.require_approval == RequireApproval.always:
            return True
        return abs(write_off) > self.write_off_limit.get(currency, Decimal(0))

    def as_dict(self) -> dict[str, Any]:
        return {
            "reason_codes": list(self.reason_codes),
            "write_off_limit": {ccy: format(v, "f") for ccy, v in self.write_off_limit.items()},
            "require_approval": self.require_approval.value,
        }


def project_settings(project: Project) -> ProjectSettings:
    """Return the project's settings, defaults filled in."""
    raw = project.settings or {}
    return ProjectSettings(
        reason_codes=tuple(raw.get("reason_codes") or DEFAULT_REASON_CODES),
        write_off_limit={ccy: Decimal(v) for ccy, v in (raw.get("write_off_limit") or {}).items()},
        require_approval=RequireApproval(raw.get("require_approval", "never")),
    )


def get_settings(*, project: Project) -> dict[str, Any]:
    """Return the project's settings as the API shows them."""
    return project_settings(project).as_dict()


def update_settings(
    *, session: SessionLike, project: Project, changes: dict[str, Any], actor: Actor = SYSTEM
) -> dict[str, Any]:
    """Return the project's settings after applying ``changes`` (audited)."""
    before = get_settings(project=project)
    raw = dict(project.settings or {})
    if "reason_codes" in changes:
        raw["reason_codes"] = list(dict.fromkeys(changes["reason_codes"]))
    if "write_off_limit" in changes:
        raw["write_off_limit"] = {
            ccy.upper(): format(Decimal(v), "f") for ccy, v in changes["write_off_limit"].items()
        }
    if "require_approval" in changes:
        raw["require_approval"] = RequireApproval(changes["require_approval"]).value
    project.settings = raw
    after = get_settings(project=project)
    record(
        session=session,
        actor=actor,
        action="project.settings",
        object_type="project",
        object_id=project.id,
        project_id=project.id,
        before=before,
        after=after,
    )
    session.commit()
    return after


def allowed_reason(settings: ProjectSettings, reason_code: str) -> bool:
    """Whether a person may resolve with ``reason_code`` in this project."""
    return reason_code in settings.reason_codes
