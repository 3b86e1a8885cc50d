from __future__ import annotations

from typing import Any

from flask import current_app, request
from flask.views import MethodView

from instrumentation import record_upload_rejected
from recon.auth.guard import current_actor, current_project, project_role
from recon.errors import PayloadTooLarge
from recon.extensions import db
from recon.idempotency import idempotent
from recon.jobs.service import source_in_use
from recon.multipart import UploadBlueprint
from recon.pagination import PageArgsSchema
from recon.projects.models import ProjectRole
from recon.sources.schemas import (
    RowPageSchema,
    SourcePageSchema,
    SourceSchema,
    SourceUploadSchema,
)
from recon.sources.service import (
    Upload,
    create_source,
    delete_source,
    get_rows,
    get_source,
    get_sources,
)

blp = UploadBlueprint(
    "sources",
    __name__,
    url_prefix="/api/projects/<int:pid>/sources",
    description="Data sources: uploaded statements and ledgers",
)


def _max_bytes() -> int:
    return int(current_app.config["RECON_MAX_UPLOAD_MB"]) * 1024 * 1024


@blp.before_request
def _refuse_oversized() -> None:
    # Answer 413 from the declared length before reading a byte; werkzeug also stops a
    # body without a length at the limit while streaming it.
    length = request.content_length
    if request.method == "POST" and length is not None and length > _max_bytes():
        record_upload_rejected("too_large")
        raise PayloadTooLarge(f"The upload is larger than {_max_bytes() // 2**20} MB.")


@blp.route("")
class Sources(MethodView):
    @blp.arguments(PageArgsSchema, location="query")
    @blp.response(200, SourcePageSchema)
    def get(self, args: dict[str, Any], pid: int) -> Any:
        """List the project's sources, newest first."""
        return get_sources(session=db.session, project=current_project(), **args)

    @idempotent
    @blp.arguments(SourceUploadSchema, location="files")
    @blp.response(201, SourceSchema)
    def post(self, form: dict[str, Any], pid: int) -> Any:
        """Upload a file (CSV, XLSX, MT940, CAMT.053, BAI2, OFX); it is parsed, checked and
        stored as canonical Parquet.

        A rejected file stores nothing: 413 over RECON_MAX_UPLOAD_MB, 422 with up to 50
        row problems, 409 when the same bytes with the same mapping and options are already
        a source of this project, 507 when the server's disk is full. Statement files report
        each statement's balances (``statements``); left-out lines are in ``skipped_lines``.
        With curl, send JSON with ``--form-string`` (``-F`` treats ``;`` specially).
        """
        file = form["file"]
        upload = Upload(
            stream=file.stream,
            filename=file.filename or "upload",
            name=form["name"],
            mapping=form["mapping"],
            options=form["options"],
            profile_id=form["profile_id"],
        )
        return create_source(
            session=db.session,
            storage=current_app.extensions["recon_storage"],
            project=current_project(),
            actor=current_actor(),
            upload=upload,
            max_bytes=_max_bytes(),
        )


@blp.route("/<int:sid>")
class SourceById(MethodView):
    @blp.response(200, SourceSchema)
    def get(self, pid: int, sid: int) -> Any:
        """Read a source's description: counts, sums, dates, mapping, options."""
        return get_source(session=db.session, project=current_project(), source_id=sid)

    @project_role(ProjectRole.editor)
    @blp.response(204)
    def delete(self, pid: int, sid: int) -> None:
        """Delete a source and its file; refused (409) while a job uses it."""
        source = get_source(session=db.session, project=current_project(), source_id=sid)
        delete_source(
            session=db.session,
            storage=current_app.extensions["recon_storage"],
            source=source,
            in_use=lambda s: source_in_use(session=db.session, source=s),
            actor=current_actor(),
        )


@blp.route("/<int:sid>/rows", methods=["GET"])
@blp.arguments(PageArgsSchema, location="query")
@blp.response(200, RowPageSchema)
def rows(args: dict[str, Any], pid: int, sid: int) -> Any:
    """Preview the source's canonical columns with each record's original row number."""
    source = get_source(session=db.session, project=current_project(), source_id=sid)
    return get_rows(storage=current_app.extensions["recon_storage"], source=source, **args)
