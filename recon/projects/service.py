"""Projects, members and the access rule every project-scoped call goes through."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError

from instrumentation import db_query_timer, record_authz_denied
from recon.audit.service import SYSTEM, Actor, record, snapshot
from recon.auth.service import Cache, CurrentUser
from recon.db_types import SessionLike
from recon.errors import Conflict, Forbidden, NotFound, ValidationError
from recon.pagination import Page, paginate
from recon.projects.models import Membership, Project, ProjectRole
from recon.storage import Storage
from recon.users.models import Role, User
from recon.users.service import get_by_username


def members_cache_key(project_id: int) -> str:
    return f"project:{project_id}:members"


def _member_roles(session: SessionLike, project_id: int) -> dict[str, str]:
    rows = session.execute(
        select(Membership.user_id, Membership.role).where(Membership.project_id == project_id)
    )
    return {str(user_id): ProjectRole(role).value for user_id, role in rows}


def project_role(
    *, session: SessionLike, project_id: int, user: CurrentUser, cache: Cache | None = None
) -> ProjectRole | None:
    """Return the user's effective role in the project, or None when they may not see it.

    Admins act as owners everywhere; a global viewer never gets more than viewer. The
    project's members come from the cache (``project:<id>:members``), which every
    membership change deletes.
    """
    if user.is_admin:
        return ProjectRole.owner
    if cache is None:
        roles = _member_roles(session, project_id)
    else:
        roles = cache.get_or_set(
            members_cache_key(project_id), lambda: _member_roles(session, project_id)
        )
    role = roles.get(str(user.id))
    if role is None:
        return None
    if user.role == Role.viewer:
        return ProjectRole.viewer
    return ProjectRole(role)


def get_project(
    *,
    session: SessionLike,
    project_id: int,
    user: CurrentUser,
    need: ProjectRole = ProjectRole.viewer,
    cache: Cache | None = None,
) -> Project:
    """Return the project if ``user`` holds at least ``need`` in it.

    A project the user is not a member of answers NotFound, exactly like one that
    does not exist, so ids reveal nothing.
    """
    with db_query_timer("select", "projects"):
        project = session.get(Project, project_id)
        role = (
            project_role(session=session, project_id=project_id, user=user, cache=cache)
            if project
            else None
        )
    if project is None or role is None:
        if project is not None:
            record_authz_denied("not_member")
        raise NotFound(f"Project {project_id} does not exist.")
    if role.rank < need.rank:
        record_authz_denied("project_role")
        raise Forbidden(
            f"This needs the {need.value} role in the project; you are {role.value}.",
            code="insufficient_project_role",
        )
    return project


def search_projects(
    *,
    session: SessionLike,
    user: CurrentUser,
    q: str | None = None,
    page: int = 1,
    per_page: int = 50,
    archived: bool | None = None,
) -> Page[Project]:
    """Return a page of the projects ``user`` can see whose name or description contains ``q``."""
    query = select(Project).order_by(Project.name, Project.id)
    if not user.is_admin:
        query = query.where(
            Project.id.in_(select(Membership.project_id).where(Membership.user_id == user.id))
        )
    if q:
        pattern = f"%{q.lower()}%"
        query = query.where(
            or_(
                func.lower(Project.name).like(pattern),
                func.lower(Project.description).like(pattern),
            )
        )
    if archived is not None:
        query = query.where(Project.archived.is_(archived))
    with db_query_timer("select", "projects"):
        return paginate(session, query, page=page, per_page=per_page)


def _name_taken(name: str) -> Conflict:
    return Conflict(f"A project named {name!r} exists already.", code="project_name_taken")


def _commit_unique_name(session: SessionLike, name: str) -> None:
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        raise _name_taken(name) from None


FIELDS = ("name", "description", "archived")


def create_project(
    *,
    session: SessionLike,
    user: CurrentUser,
    name: str,
    description: str = "",
    actor: Actor = SYSTEM,
) -> Project:
    """Return a new project owned by ``user``; viewers can not create projects."""
    if user.role == Role.viewer:
        record_authz_denied("global_role")
        raise Forbidden("Viewers can not create projects.", code="insufficient_role")
    project = Project(name=name, description=description, created_by_id=user.id)
    project.members.append(Membership(user_id=user.id, role=ProjectRole.owner))
    session.add(project)
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        raise _name_taken(name) from None
    record(
        session=session,
        actor=actor,
        action="project.create",
        object_type="project",
        object_id=project.id,
        project_id=project.id,
        after=snapshot(project, FIELDS),
    )
    _commit_unique_name(session, name)
    return project


def update_project(
    *, session: SessionLike, project: Project, changes: dict[str, Any], actor: Actor = SYSTEM
) -> Project:
    """Return the project with name, description or archived changed."""
    before = snapshot(project, FIELDS)
    for field in FIELDS:
        if field in changes:
            setattr(project, field, changes[field])
    record(
        session=session,
        actor=actor,
        action="project.update",
        object_type="project",
        object_id=project.id,
        project_id=project.id,
        before=before,
        after=snapshot(project, FIELDS),
    )
    _commit_unique_name(session, project.name)
    return project


def delete_project(
    *, session: SessionLike, project: Project, storage: Storage, actor: Actor = SYSTEM
) -> None:
    """Delete the project, everything in it and its files."""
    record(
        session=session,
        actor=actor,
        action="project.delete",
        object_type="project",
        object_id=project.id,
        project_id=project.id,
        before=snapshot(project, FIELDS),
    )
    project_id = project.id
    session.delete(project)
    session.commit()
    storage.remove(storage.project_dir(project_id))


def get_members(*, session: SessionLike, project: Project) -> list[Membership]:
    """Return the project's members by username."""
    query = (
        select(Membership)
        .join(User)
        .where(Membership.project_id == project.id)
        .order_by(User.username)
    )
    return list(session.scalars(query).unique())


def set_member(
    *,
    session: SessionLike,
    project: Project,
    user_id: int,
    role: ProjectRole,
    actor: Actor = SYSTEM,
) -> Membership:
    """Return the membership of ``user_id`` in the project, added or with its role changed."""
    if session.get(User, user_id) is None:
        raise ValidationError(
            "No such user.",
            errors=[{"field": "user_id", "message": f"User {user_id} does not exist."}],
        )
    member = session.scalars(
        select(Membership).where(Membership.project_id == project.id, Membership.user_id == user_id)
    ).first()
    before = None if member is None else {"role": member.role.value}
    if member is None:
        member = Membership(project_id=project.id, user_id=user_id, role=role)
        session.add(member)
    else:
        _keep_an_owner(session, project, member, role)
        member.role = role
    record(
        session=session,
        actor=actor,
        action="member.set",
        object_type="member",
        object_id=user_id,
        project_id=project.id,
        before=before,
        after={"role": ProjectRole(role).value},
    )
    session.commit()
    return member


def add_member(
    *,
    session: SessionLike,
    project: Project,
    username: str,
    role: ProjectRole,
    actor: Actor = SYSTEM,
) -> Membership:
    """Return the membership of the user named ``username``, added or with its role changed."""
    user = get_by_username(session=session, username=username)
    if user is None:
        raise ValidationError(
            "No such user.",
            errors=[{"field": "username", "message": f"No user is called {username!r}."}],
        )
    return set_member(session=session, project=project, user_id=user.id, role=role, actor=actor)


def remove_member(
    *, session: SessionLike, project: Project, user_id: int, actor: Actor = SYSTEM
) -> None:
    """Remove ``user_id`` from the project; the last owner can not be removed."""
    member = session.scalars(
        select(Membership).where(Membership.project_id == project.id, Membership.user_id == user_id)
    ).first()
    if member is None:
        raise NotFound(f"User {user_id} is not a member of this project.")
    _keep_an_owner(session, project, member, None)
    record(
        session=session,
        actor=actor,
        action="member.remove",
        object_type="member",
        object_id=user_id,
        project_id=project.id,
        before={"role": member.role.value},
    )
    session.delete(member)
    session.commit()


def _keep_an_owner(
    session: SessionLike, project: Project, member: Membership, new_role: ProjectRole | None
) -> None:
    if member.role != ProjectRole.owner or new_role == ProjectRole.owner:
        return
    owners = session.scalar(
        select(func.count()).where(
            Membership.project_id == project.id, Membership.role == ProjectRole.owner
        )
    )
    if owners == 1:
        raise Conflict("A project keeps at least one owner.", code="last_owner")
