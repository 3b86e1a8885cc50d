from __future__ import annotations

from typing import Any

from flask import current_app
from flask.views import MethodView
from flask_smorest import Blueprint

from recon.auth.guard import current_actor, current_project, current_user, project_role
from recon.cache_keys import analytics_key
from recon.extensions import db
from recon.projects.models import ProjectRole
from recon.projects.schemas import (
    MemberAddSchema,
    MemberSchema,
    ProjectCreateSchema,
    ProjectPageSchema,
    ProjectSchema,
    ProjectSearchArgsSchema,
    ProjectUpdateSchema,
    SettingsSchema,
    SettingsUpdateSchema,
)
from recon.projects.service import (
    create_project,
    delete_project,
    get_members,
    members_cache_key,
    remove_member,
    search_projects,
    set_member,
    update_project,
)
from recon.projects.settings import get_settings, update_settings

blp = Blueprint("projects", __name__, url_prefix="/api/projects", description="Projects")


def _forget(project_id: int) -> None:
    current_app.extensions["recon_cache"].delete(members_cache_key(project_id))


@blp.route("")
class Projects(MethodView):
    @blp.arguments(ProjectSearchArgsSchema, location="query")
    @blp.response(200, ProjectPageSchema)
    def get(self, args: dict[str, Any]) -> Any:
        """Search the projects you can see (all of them for admins) by name and description."""
        return search_projects(session=db.session, user=current_user(), **args)

    @blp.arguments(ProjectCreateSchema)
    @blp.response(201, ProjectSchema)
    def post(self, data: dict[str, Any]) -> Any:
        """Create a project; you become its owner."""
        return create_project(
            session=db.session, user=current_user(), actor=current_actor(), **data
        )


@blp.route("/<int:pid>")
class ProjectById(MethodView):
    @blp.response(200, ProjectSchema)
    def get(self, pid: int) -> Any:
        """Read a project."""
        return current_project()

    @project_role(ProjectRole.owner)
    @blp.arguments(ProjectUpdateSchema)
    @blp.response(200, ProjectSchema)
    def patch(self, changes: dict[str, Any], pid: int) -> Any:
        """Rename, describe or archive a project (owners)."""
        project = update_project(
            session=db.session, project=current_project(), changes=changes, actor=current_actor()
        )
        _forget(pid)
        return project

    @project_role(ProjectRole.owner)
    @blp.response(204)
    def delete(self, pid: int) -> None:
        """Delete a project and everything in it (owners)."""
        delete_project(
            session=db.session,
            project=current_project(),
            actor=current_actor(),
            storage=current_app.extensions["recon_storage"],
        )
        _forget(pid)


@blp.route("/<int:pid>/members")
class Members(MethodView):
    @blp.response(200, MemberSchema(many=True))
    def get(self, pid: int) -> Any:
        """List the project's members and their roles."""
        return get_members(session=db.session, project=current_project())

    @project_role(ProjectRole.owner)
    @blp.arguments(MemberAddSchema)
    @blp.response(200, MemberSchema)
    def post(self, data: dict[str, Any], pid: int) -> Any:
        """Add a member or change their role (owners)."""
        member = set_member(
            session=db.session, project=current_project(), actor=current_actor(), **data
        )
        _forget(pid)
        return member


@blp.route("/<int:pid>/members/<int:uid>", methods=["DELETE"])
@project_role(ProjectRole.owner)
@blp.response(204)
def remove(pid: int, uid: int) -> None:
    """Remove a member (owners); the last owner stays."""
    remove_member(session=db.session, project=current_project(), user_id=uid, actor=current_actor())
    _forget(pid)


@blp.route("/<int:pid>/settings")
class Settings(MethodView):
    @blp.response(200, SettingsSchema)
    def get(self, pid: int) -> Any:
        """The project's review controls: reason codes, write-off limits, approval rule."""
        return get_settings(project=current_project())

    @project_role(ProjectRole.owner)
    @blp.arguments(SettingsUpdateSchema)
    @blp.response(200, SettingsSchema)
    def patch(self, changes: dict[str, Any], pid: int) -> Any:
        """Change the reason codes, the write-off limit per currency or when write-offs need
        a second person's approval (never, over_limit, always). Owners only; audited."""
        settings = update_settings(
            session=db.session, project=current_project(), changes=changes, actor=current_actor()
        )
        current_app.extensions["recon_cache"].delete(analytics_key(pid))
        return settings
