"""Source profiles: a project's named mapping + options, so a recurring upload is one field.

An upload that names ``profile_id`` starts from the profile's mapping and
options; the upload's own ``mapping`` and ``options`` keys, when given, override
the profile's key by key (see ``merged``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from instrumentation import db_query_timer
from recon.audit.service import SYSTEM, Actor, record, snapshot
from recon.db_types import SessionLike
from recon.errors import Conflict, NotFound, ValidationError
from recon.pagination import Page, paginate
from recon.projects.models import Project
from recon.sources.models import SourceProfile
from recon.sources.options import parse_mapping_spec, parse_options
from recon.sources.rejections import UploadRejected

AUDITED = ("name", "description", "mapping", "options")


def _checked(mapping: dict[str, Any], options: dict[str, Any]) -> None:
    """Refuse a profile that no upload could use (the same checks an upload makes)."""
    try:
        parse_options(options)
        parse_mapping_spec(mapping)
    except UploadRejected as exc:
        raise ValidationError(exc.detail, code="invalid_profile", errors=exc.errors) from None


def _taken(name: str) -> Conflict:
    return Conflict(f"A profile named {name!r} exists already.", code="duplicate_profile")


def get_profiles(
    *, session: SessionLike, project: Project, page: int = 1, per_page: int = 50
) -> Page[SourceProfile]:
    """Return a page of the project's profiles, by name."""
    query = (
        select(SourceProfile)
        .where(SourceProfile.project_id == project.id)
        .order_by(SourceProfile.name, SourceProfile.id)
    )
    with db_query_timer("select", "source_profiles"):
        return paginate(session, query, page=page, per_page=per_page)


def get_profile(*, session: SessionLike, project: Project, profile_id: int) -> SourceProfile:
    """Return the project's profile ``profile_id`` or raise NotFound (also for other projects')."""
    with db_query_timer("select", "source_profiles"):
        profile = session.get(SourceProfile, profile_id)
    if profile is None or profile.project_id != project.id:
        raise NotFound(f"Profile {profile_id} does not exist in this project.")
    return profile


def create_profile(
    *,
    session: SessionLike,
    project: Project,
    name: str,
    mapping: dict[str, Any] | None = None,
    options: dict[str, Any] | None = None,
    description: str = "",
    actor: Actor = SYSTEM,
) -> SourceProfile:
    """Return the new profile; raise ValidationError for unusable settings, Conflict on a name."""
    mapping, options = mapping or {}, options or {}
    _checked(mapping, options)
    profile = SourceProfile(
        project_id=project.id,
        name=name,
        description=description,
        mapping=mapping,
        options=options,
        created_by_id=actor.id,
    )
    session.add(profile)
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        raise _taken(name) from None
    record(
        session=session,
        actor=actor,
        action="profile.create",
        object_type="profile",
        object_id=profile.id,
        project_id=project.id,
        after=snapshot(profile, AUDITED),
    )
    session.commit()
    return profile


def update_profile(
    *, session: SessionLike, profile: SourceProfile, changes: dict[str, Any], actor: Actor = SYSTEM
) -> SourceProfile:
    """Return the profile with ``changes`` (name, description, mapping, options) applied."""
    before = snapshot(profile, AUDITED)
    mapping = changes.get("mapping", profile.mapping)
    options = changes.get("options", profile.options)
    _checked(mapping or {}, options or {})
    for field in AUDITED:
        if field in changes:
            setattr(
                profile, field, changes[field] or ({} if field in ("mapping", "options") else "")
            )
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        raise _taken(str(changes.get("name"))) from None
    record(
        session=session,
        actor=actor,
        action="profile.update",
        object_type="profile",
        object_id=profile.id,
        project_id=profile.project_id,
        before=before,
        after=snapshot(profile, AUDITED),
    )
    session.commit()
    return profile


def delete_profile(*, session: SessionLike, profile: SourceProfile, actor: Actor = SYSTEM) -> None:
    """Delete the profile; sources made with it keep their own copy of its settings."""
    record(
        session=session,
        actor=actor,
        action="profile.delete",
        object_type="profile",
        object_id=profile.id,
        project_id=profile.project_id,
        before=snapshot(profile, AUDITED),
    )
    session.delete(profile)
    session.commit()


def merged(
    profile: SourceProfile | None,
    mapping: dict[str, Any] | None,
    options: dict[str, Any] | None,
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """The mapping and options an upload uses: the profile's, overridden key by key."""
    if profile is None:
        return mapping, options
    return {**profile.mapping, **(mapping or {})}, {**profile.options, **(options or {})}
