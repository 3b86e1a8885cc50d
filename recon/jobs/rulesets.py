"""Saved rule sets: versioned per project, so a recurring reconciliation is one call."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from recon.audit.service import SYSTEM, Actor, record
from recon.db_types import SessionLike
from recon.engine import validate_rules
from recon.engine.rules import ANY_FIELD
from recon.errors import NotFound
from recon.jobs.models import RuleSet
from recon.projects.models import Project


def get_rulesets(*, session: SessionLike, project: Project) -> list[RuleSet]:
    """Return the latest version of each of the project's rule sets, by name."""
    latest = (
        select(RuleSet.name, func.max(RuleSet.version).label("version"))
        .where(RuleSet.project_id == project.id)
        .group_by(RuleSet.name)
        .subquery()
    )
    query = (
        select(RuleSet)
        .join(latest, (RuleSet.name == latest.c.name) & (RuleSet.version == latest.c.version))
        .where(RuleSet.project_id == project.id)
        .order_by(RuleSet.name)
    )
    return list(session.scalars(query))


def get_ruleset(*, session: SessionLike, project: Project, ruleset_id: int) -> RuleSet:
    """Return one version of a rule set of the project, or raise NotFound."""
    ruleset = session.get(RuleSet, ruleset_id)
    if ruleset is None or ruleset.project_id != project.id:
        raise NotFound(f"Rule set {ruleset_id} does not exist in this project.")
    return ruleset


def get_versions(*, session: SessionLike, project: Project, name: str) -> list[RuleSet]:
    """Return every version of the named rule set, newest first."""
    return list(
        session.scalars(
            select(RuleSet)
            .where(RuleSet.project_id == project.id, RuleSet.name == name)
            .order_by(RuleSet.version.desc())
        )
    )


def save_ruleset(
    *,
    session: SessionLike,
    project: Project,
    name: str,
    rules: dict[str, Any],
    description: str = "",
    actor: Actor = SYSTEM,
) -> RuleSet:
    """Return a new version of the named rule set (version 1 for a new name).

    The rules are validated first: a rule set that could never run is refused.
    """
    # Extra fields are checked against the sources when a job uses the rule set.
    normalised = validate_rules(rules, fields=ANY_FIELD)
    current = session.scalar(
        select(func.max(RuleSet.version)).where(
            RuleSet.project_id == project.id, RuleSet.name == name
        )
    )
    ruleset = RuleSet(
        project_id=project.id,
        name=name,
        version=(current or 0) + 1,
        rules=normalised,
        description=description,
        created_by_id=actor.id,
    )
    session.add(ruleset)
    session.flush()
    record(
        session=session,
        actor=actor,
        action="ruleset.save",
        object_type="ruleset",
        object_id=ruleset.id,
        project_id=project.id,
        after={"name": name, "version": ruleset.version, "rules": normalised},
    )
    session.commit()
    return ruleset
