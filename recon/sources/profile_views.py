from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint

from recon.auth.guard import current_actor, current_project
from recon.extensions import db
from recon.pagination import PageArgsSchema
from recon.sources.profiles import (
    create_profile,
    delete_profile,
    get_profile,
    get_profiles,
    update_profile,
)
from recon.sources.schemas import (
    ProfileCreateSchema,
    ProfilePageSchema,
    ProfileSchema,
    ProfileUpdateSchema,
)

blp = Blueprint(
    "profiles",
    __name__,
    url_prefix="/api/projects/<int:pid>/profiles",
    description="Source profiles: a saved mapping and options, named in an upload's profile_id",
)


@blp.route("")
class Profiles(MethodView):
    @blp.arguments(PageArgsSchema, location="query")
    @blp.response(200, ProfilePageSchema)
    def get(self, args: dict[str, Any], pid: int) -> Any:
        """List the project's source profiles, by name."""
        return get_profiles(session=db.session, project=current_project(), **args)

    @blp.arguments(ProfileCreateSchema)
    @blp.response(201, ProfileSchema)
    def post(self, data: dict[str, Any], pid: int) -> Any:
        """Save a mapping and options under a name; 422 when no upload could use them."""
        return create_profile(
            session=db.session, project=current_project(), actor=current_actor(), **data
        )


@blp.route("/<int:prid>")
class ProfileById(MethodView):
    @blp.response(200, ProfileSchema)
    def get(self, pid: int, prid: int) -> Any:
        """Read a source profile."""
        return get_profile(session=db.session, project=current_project(), profile_id=prid)

    @blp.arguments(ProfileUpdateSchema)
    @blp.response(200, ProfileSchema)
    def patch(self, data: dict[str, Any], pid: int, prid: int) -> Any:
        """Change a profile's name, description, mapping or options."""
        profile = get_profile(session=db.session, project=current_project(), profile_id=prid)
        return update_profile(
            session=db.session, profile=profile, changes=data, actor=current_actor()
        )

    @blp.response(204)
    def delete(self, pid: int, prid: int) -> None:
        """Delete a profile; sources uploaded with it keep their mapping and options."""
        profile = get_profile(session=db.session, project=current_project(), profile_id=prid)
        delete_profile(session=db.session, profile=profile, actor=current_actor())
