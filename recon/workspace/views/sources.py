"""Upload a source (pick or drop a file, preview it as parsed, choose mapping and options,
fix and retry) and look at one source's description and rows."""

from __future__ import annotations

from typing import Any

from flask import request
from werkzeug.datastructures import MultiDict

from recon.auth.guard import current_actor, current_project
from recon.errors import APIError, ValidationError
from recon.jobs.service import source_in_use
from recon.pagination import PageArgsSchema
from recon.sources.options import ENCODINGS
from recon.sources.schemas import SourceFormSchema
from recon.sources.service import (
    Upload,
    create_source,
    delete_source,
    get_rows,
    get_source,
    preview_upload,
)
from recon.workspace.blueprint import bp
from recon.workspace.forms import field_errors, load
from recon.workspace.render import go, page
from recon.workspace.views.common import max_upload_bytes, session, storage

MAPPED = ("key", "amount", "date", "currency", "description")
DELIMITERS = {"": "detect", ",": "comma (,)", ";": "semicolon (;)", "tab": "tab", "|": "pipe (|)"}
DECIMALS = {"": "detect", ".": "point (1234.56)", ",": "comma (1234,56)"}
THOUSANDS = {
    "": "detect",
    "none": "none",
    ",": "comma",
    ".": "point",
    " ": "space",
    "'": "apostrophe",
}
TEXT_OPTIONS = ("date_format", "debit_column", "credit_column", "sheet")


def _mapping(form: MultiDict[str, str]) -> dict[str, Any] | None:
    mapping: dict[str, Any] = {
        field: form[f"map_{field}"].strip()
        for field in MAPPED
        if form.get(f"map_{field}", "").strip()
    }
    if form.get("no_date"):
        mapping["date"] = None
    return mapping or None


def _options(form: MultiDict[str, str]) -> dict[str, Any] | None:
    options: dict[str, Any] = {}
    for name in ("delimiter", "encoding", "decimal"):
        if form.get(name):
            options[name] = form[name]
    if form.get("thousands"):
        options["thousands"] = "" if form["thousands"] == "none" else form["thousands"]
    for name in TEXT_OPTIONS:
        if form.get(name, "").strip():
            options[name] = form[name].strip()
    if isinstance(options.get("sheet"), str) and options["sheet"].isdigit():
        options["sheet"] = int(options["sheet"])
    skip = form.get("skip_rows", "").strip()
    if skip:
        if not skip.isdigit() or len(skip) > 6:
            raise ValidationError(
                "Rows to skip is a whole number.",
                errors=[{"field": "skip_rows", "message": "A whole number, 0 or more."}],
            )
        options["skip_rows"] = int(skip)
    return options or None


def _upload() -> Upload:
    """The upload as the form describes it; ValidationError when a field is wrong."""
    form = load(SourceFormSchema(), request.form)
    file = request.files.get("file")
    if file is None or not file.filename:
        raise ValidationError(
            "Choose a file to upload.", errors=[{"field": "file", "message": "Choose a file."}]
        )
    return Upload(
        stream=file.stream,
        filename=file.filename,
        name=form["name"],
        mapping=_mapping(request.form),
        options=_options(request.form),
    )


def _form_context(**extra: Any) -> dict[str, Any]:
    return {
        "form": request.form,
        "delimiters": DELIMITERS,
        "encodings": [""] + sorted(set(ENCODINGS.values())),
        "decimals": DECIMALS,
        "thousands": THOUSANDS,
        "mapped": MAPPED,
        **extra,
    }


@bp.route("/projects/<id:pid>/upload", endpoint="upload")
def upload_form(pid: int) -> Any:
    """The upload form."""
    return page("workspace/upload.html", **_form_context())


@bp.route("/projects/<id:pid>/upload/preview", methods=["POST"], endpoint="upload_preview")
def preview(pid: int) -> Any:
    """The first rows of the chosen file as recon parses them, and what it detected; nothing
    is stored."""
    try:
        result = preview_upload(storage=storage(), upload=_upload(), max_bytes=max_upload_bytes())
    except ValidationError as error:
        return _problems(error)
    return page(
        "workspace/upload.html",
        "workspace/_preview.html",
        **_form_context(preview=result, headers=_headers(result.mapping, result.columns)),
    )


@bp.route("/projects/<id:pid>/upload", methods=["POST"], endpoint="upload_send")
def upload(pid: int) -> Any:
    """Store the file as a source of the project and open it."""
    try:
        source = create_source(
            session=session(),
            storage=storage(),
            project=current_project(),
            actor=current_actor(),
            upload=_upload(),
            max_bytes=max_upload_bytes(),
        )
    except ValidationError as error:
        return _problems(error)
    except APIError as error:  # a duplicate file (409), too large (413)
        return _problems(error)
    return go("workspace.source", pid=pid, sid=source.id)


def _headers(mapping: dict[str, Any], columns: list[str]) -> list[str]:
    used = [value for value in mapping.values() if value]
    return used + [c for c in columns if c not in used]


def _problems(error: APIError) -> Any:
    found = error.extra.get("columns_found") or []
    return page(
        "workspace/upload.html",
        "workspace/_preview.html",
        status=error.status,
        **_form_context(
            error=error,
            errors=field_errors(error) if isinstance(error, ValidationError) else {},
            headers=found,
        ),
    )


@bp.route("/projects/<id:pid>/sources/<id:sid>", endpoint="source")
def source(pid: int, sid: int) -> Any:
    """A source: what was detected and stored, and its rows as parsed."""
    found = get_source(session=session(), project=current_project(), source_id=sid)
    args = load(PageArgsSchema(), request.args)
    return page(
        "workspace/source.html",
        "workspace/_rows.html",
        source=found,
        rows=get_rows(storage=storage(), source=found, **args),
    )


@bp.route("/projects/<id:pid>/sources/<id:sid>/delete", methods=["POST"], endpoint="delete_source")
def delete(pid: int, sid: int) -> Any:
    """Delete a source that no job uses."""
    found = get_source(session=session(), project=current_project(), source_id=sid)
    delete_source(
        session=session(),
        storage=storage(),
        source=found,
        in_use=lambda s: source_in_use(session=session(), source=s),
        actor=current_actor(),
    )
    return go("workspace.project", pid=pid)
