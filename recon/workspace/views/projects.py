"""Projects: the list (search, create) and one project's overview (sources, rule sets,
jobs, members)."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask import request

from recon.auth.guard import current_actor, current_project, current_user, project_role
from recon.errors import Conflict, Forbidden, ValidationError
from recon.jobs.rulesets import get_rulesets
from recon.jobs.service import get_jobs
from recon.pagination import PageArgsSchema
from recon.projects.models import ProjectRole
from recon.projects.schemas import ProjectCreateSchema, ProjectSearchArgsSchema
from recon.projects.service import (
    add_member,
    create_project,
    get_members,
    members_cache_key,
    remove_member,
    search_projects,
)
from recon.sources.service import get_sources
from recon.workspace.blueprint import bp
from recon.workspace.forms import field_errors, load
from recon.workspace.render import go, page
from recon.workspace.views.common import cache, session


class MemberFormSchema(ma.Schema):
    username = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=80))
    role = ma.fields.Enum(ProjectRole, by_value=True, required=True)


def _projects_page(status: int = 200, **extra: Any) -> Any:
    args = load(ProjectSearchArgsSchema(), request.args)
    found = search_projects(session=session(), user=current_user(), **args)
    return page(
        "workspace/projects.html",
        "workspace/_project_list.html",
        status=status,
        found=found,
        q=args.get("q") or "",
        **extra,
    )


@bp.route("/", endpoint="projects")
def projects() -> Any:
    """The projects you can see, searchable by name and description."""
    return _projects_page()


@bp.route("/projects", methods=["POST"], endpoint="create_project")
def create() -> Any:
    """Create a project (you become its owner) and open it."""
    try:
        data = load(ProjectCreateSchema(), request.form)
        project = create_project(
            session=session(), user=current_user(), actor=current_actor(), **data
        )
    except (ValidationError, Conflict, Forbidden) as error:
        form = {
            "name": request.form.get("name", ""),
            "description": request.form.get("description", ""),
        }
        return _projects_page(
            status=error.status, error=error, errors=field_errors_or(error), form=form
        )
    return go("workspace.project", pid=project.id)


def field_errors_or(error: Exception) -> dict[str, str]:
    return field_errors(error) if isinstance(error, ValidationError) else {}


def _overview(status: int = 200, **extra: Any) -> Any:
    project = current_project()
    args = load(PageArgsSchema(), request.args)
    return page(
        "workspace/project.html",
        status=status,
        sources=get_sources(session=session(), project=project, per_page=100),
        rulesets=get_rulesets(session=session(), project=project),
        jobs=get_jobs(session=session(), project=project, **args),
        members=get_members(session=session(), project=project),
        **extra,
    )


@bp.route("/projects/<id:pid>", endpoint="project")
def project(pid: int) -> Any:
    """A project: its sources, rule sets, jobs and members."""
    return _overview()


@bp.route("/projects/<id:pid>/members", methods=["POST"], endpoint="add_member")
@project_role(ProjectRole.owner)
def member_add(pid: int) -> Any:
    """Add a member by username, or change their role (owners)."""
    try:
        data = load(MemberFormSchema(), request.form)
        add_member(session=session(), project=current_project(), actor=current_actor(), **data)
    except (ValidationError, Conflict) as error:
        return _overview(
            status=error.status, member_error=error, member_errors=field_errors_or(error)
        )
    cache().delete(members_cache_key(pid))
    return go("workspace.project", pid=pid, _anchor="members")


@bp.route("/projects/<id:pid>/members/<id:uid>/remove", methods=["POST"], endpoint="remove_member")
@project_role(ProjectRole.owner)
def member_remove(pid: int, uid: int) -> Any:
    """Remove a member (owners); the last owner stays."""
    remove_member(session=session(), project=current_project(), user_id=uid, actor=current_actor())
    cache().delete(members_cache_key(pid))
    return go("workspace.project", pid=pid, _anchor="members")
