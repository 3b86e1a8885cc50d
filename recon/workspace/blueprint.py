"""The workspace blueprint: every page at ``/`` (the API lives under ``/api``).

Its hooks are set here, once, at import: CSRF on every state-changing request,
HTML error pages, the template context, and the static files.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from flask import Blueprint, g, request
from werkzeug.exceptions import HTTPException

from recon.errors import APIError
from recon.extensions import db
from recon.projects.service import project_role
from recon.workspace import assets
from recon.workspace.render import handle_error
from recon.workspace.signin import csrf

bp = Blueprint("workspace", __name__)


@bp.before_request
def _protect() -> None:
    # After the guard: a caller who is not signed in is sent to sign in, not told about CSRF.
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        csrf.protect()


@bp.context_processor
def _context() -> dict[str, Any]:
    user = g.get("user")
    project = g.get("project")
    role = None
    if user is not None and project is not None:
        role = project_role(session=db.session, project_id=project.id, user=user)
    return {"user": user, "project": project, "role": role, "today": date.today()}


bp.register_error_handler(APIError, handle_error)
bp.register_error_handler(HTTPException, handle_error)
bp.register_error_handler(Exception, handle_error)
bp.add_url_rule("/static/<path:filename>", "static_file", assets.static_file)
