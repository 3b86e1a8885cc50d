from __future__ import annotations

from typing import Any

from flask import Response, current_app
from flask_smorest import Blueprint

from recon.audit.schemas import AuditArgsSchema, AuditExportArgsSchema, AuditPageSchema
from recon.audit.service import get_events
from recon.auth.guard import current_project
from recon.extensions import db
from recon.review.export import documented_download
from recon.review.list_exports import download_list, export_audit

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


@blp.route("/export", methods=["GET"])
@blp.arguments(AuditExportArgsSchema, location="query")
@documented_download(blp)
def audit_export(args: dict[str, Any], pid: int) -> Response:
    """Stream the project's audit log as CSV or XLSX (formula-safe), newest first, with the
    log's filters; ``before`` and ``after`` as JSON text."""
    return download_list(
        export_audit,
        session=db.session,
        storage=current_app.extensions["recon_storage"],
        project=current_project(),
        args=args,
    )
