"""Projects, members and the access rule every project-scoped call goes through."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from instrumentation import db_query_timer, record_authz_denied
from recon.auth.service import CurrentUser
from recon.errors import Conflict, Forbidden, NotFound, ValidationError
from recon.pagination import Page, paginate
from recon.projects.models import Membership, Project, ProjectRole
from recon.users.models import Role, User


def project_role(*, session: Session, project_id: int, user: CurrentUser) -> ProjectRole | None:
    """Return the user's effective role in the project, or None when they may not see it.

    Admins act as owners everywhere; a global viewer never gets more than viewer.
    """
    if user.is_admin:
        return ProjectRole.owner
    role = session.scalar(
        select(Membership.role).where(
            Membership.project_id == project_id, Membership.user_id == user.id
        )
    )
    if role is None:
        return None
    if user.role == Role.viewer:
        return ProjectRole.viewer
    return ProjectRole(role)


def get_project(
    *,
    session: Session,
    project_id: int,
    user: CurrentUser,
    need: ProjectRole = ProjectRole.viewer,
) -> Project:
    """Return the project if ``user`` holds at least ``need`` in it.

    A project the user is not a member of answers NotFound, exactly like one that
    does not exist, so ids reveal nothing.
    """
    with db_query_timer("select", "projects"):
        project = session.get(Project, project_id)
        role = project_role(session=session, project_id=project_id, user=user) if project else None
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
    session: Session,
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


def _commit_unique_name(session: Session, name: str) -> None:
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        raise Conflict(
            f"A project named {name!r} exists already.", code="project_name_taken"
        ) from None


def create_project(
    *, session: Session, user: CurrentUser, name: str, description: str = ""
) -> Project:
    """Return a new project owned by ``user``; viewers can not create projects."""
    if user.role == Role.viewer:
        record_authz_denied("global_role")
        raise Forbidden("Viewers can not create projects.", code="insufficient_role")
    project = Project(name=name, description=description, created_by_id=user.id)
    project.members.append(Membership(user_id=user.id, role=ProjectRole.owner))
    session.add(project)
    _commit_unique_name(session, name)
    return project


def update_project(*, session: Session, project: Project, changes: dict[str, Any]) -> Project:
    """Return the project with name, description or archived changed."""
    for field in ("name", "description", "archived"):
        if field in changes:
            setattr(project, field, changes[field])
    _commit_unique_name(session, project.name)
    return project


def delete_project(*, session: Session, project: Project) -> None:
    """Delete the project and everything in it."""
    session.delete(project)
    session.commit()


def get_members(*, session: Session, project: Project) -> list[Membership]:
    """Return the project's members by username."""
    query = (
        select(Membership)
        .join(User)
        .where(Membership.project_id == project.id)
        .order_by(User.username)
    )
    return list(session.scalars(query).unique())


def set_member(
    *, session: Session, project: Project, user_id: int, role: ProjectRole
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
    if member is None:
        member = Membership(project_id=project.id, user_id=user_id, role=role)
        session.add(member)
    else:
        _keep_an_owner(session, project, member, role)
        member.role = role
    session.commit()
    return member


def remove_member(*, session: Session, project: Project, user_id: int) -> None:
    """Remove ``user_id`` from the project; the last owner can not be removed."""
    member = session.scalars(
        select(Membership).where(Membership.project_id == project.id, Membership.user_id == user_id)
    ).first()
    if member is None:
        raise NotFound(f"User {user_id} is not a member of this project.")
    _keep_an_owner(session, project, member, None)
    session.delete(member)
    session.commit()


def _keep_an_owner(
    session: Session, project: Project, member: Membership, new_role: ProjectRole | None
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
