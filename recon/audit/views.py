from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint

from recon.audit.schemas import AuditArgsSchema, AuditPageSchema
from recon.audit.service import get_events
from recon.auth.guard import current_project
from recon.extensions import db

blp = Blueprint(
    "audit",
    __name__,
    url_prefix="/api/projects/<int:pid>/audit",
    description="The project's append-only audit log (read only)",
)


@blp.route("", methods=["GET"])
@blp.arguments(AuditArgsSchema, location="query")
@blp.response(200, AuditPageSchema)
def audit(args: dict[str, Any], pid: int) -> Any:
    """Page through every change made in the project, newest first."""
    return get_events(session=db.session, project_id=current_project().id, **args)
