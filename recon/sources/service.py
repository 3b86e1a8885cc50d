"""Sources: upload (stream, hash, parse, store), list, read, preview rows, delete.

An upload becomes a source only when everything succeeded: the file is parsed
into a temporary Parquet file, then the DB row is inserted and the file moved
into place inside one transaction. Any rejection leaves no row and no file.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import IO, Any

import duckdb
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from instrumentation import db_query_timer, record_upload_rejected
from recon.audit.service import SYSTEM, Actor, record, snapshot
from recon.db_types import SessionLike
from recon.duckdb_conn import cursor
from recon.errors import (
    Conflict,
    InsufficientStorage,
    NotFound,
    PayloadTooLarge,
    ValidationError,
)
from recon.fields import name_problem
from recon.pagination import Page, paginate
from recon.projects.models import Project
from recon.sources.formats import TABLE_FORMATS
from recon.sources.models import Source, SourceProfile
from recon.sources.parsing import IngestResult, Limits, UploadRejected, ingest_file
from recon.sources.profiles import get_profile, merged
from recon.storage import Storage

CHUNK = 1024 * 1024


@dataclass(frozen=True)
class Upload:
    stream: IO[bytes]
    filename: str
    name: str
    mapping: dict[str, Any] | None
    options: dict[str, Any] | None
    profile_id: int | None = None


def settings_digest(mapping: dict[str, Any] | None, options: dict[str, Any] | None) -> str:
    """SHA-256 of the mapping and options as given (key order and None values ignored)."""
    given = {
        "mapping": {k: v for k, v in (mapping or {}).items() if v is not None},
        "options": {k: v for k, v in (options or {}).items() if v is not None},
    }
    text = json.dumps(given, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def _copy_and_hash(stream: IO[bytes], dest: Path, max_bytes: int) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with dest.open("wb") as out:
        while chunk := stream.read(CHUNK):
            size += len(chunk)
            if size > max_bytes:
                raise PayloadTooLarge(f"The file is larger than {max_bytes // (1024 * 1024)} MB.")
            digest.update(chunk)
            out.write(chunk)
    return digest.hexdigest(), size


@dataclass(frozen=True)
class Preview:
    """What an upload would become, without storing it: the first rows as parsed."""

    row_count: int
    options: dict[str, Any]
    mapping: dict[str, str | None]
    columns: list[str]
    rows: list[dict[str, Any]]
    sums: dict[str, str]
    # A statement file's statements, with their balances checked (as a source keeps them).
    statements: list[dict[str, Any]] = field(default_factory=list)

    @property
    def statement_file(self) -> bool:
        """Whether the file is a bank statement (its fields fixed by the format, no options)."""
        return self.options.get("format") not in TABLE_FORMATS


def preview_upload(
    *,
    storage: Storage,
    upload: Upload,
    max_bytes: int,
    limits: Limits | None = None,
    rows: int = 20,
) -> Preview:
    """Return the first ``rows`` records of ``upload`` as the upload would store them, the
    options detected and the mapping used; raise as ``create_source`` would, storing nothing.

    The whole file is parsed (a row problem at the end is found now, not at the upload).
    """
    with (
        storage.temp_path(Path(upload.filename).suffix.lower()) as raw,
        storage.temp_path(".parquet") as parquet,
    ):
        _copy_and_hash(upload.stream, raw, max_bytes)
        result = ingest_file(
            raw,
            parquet,
            filename=upload.filename,
            mapping=upload.mapping,
            options=upload.options,
            limits=limits,
            temp_dir=storage.tmp_dir,
        )
        first = _read_rows(str(parquet), per_page=rows, offset=0)
    return Preview(
        row_count=result.row_count,
        options=result.detected_options,
        mapping=result.mapping,
        columns=list(result.columns),
        rows=first,
        sums={k: str(v) for k, v in result.sums.items()},
        statements=result.statements,
    )


def _existing(session: SessionLike, project_id: int, sha256: str, settings: str) -> Source | None:
    return session.scalars(
        select(Source).where(
            Source.project_id == project_id,
            Source.sha256 == sha256,
            Source.settings_sha256 == settings,
        )
    ).first()


def _duplicate(existing: Source) -> Conflict:
    return Conflict(
        f"This file was uploaded already with the same mapping and options, as source "
        f"{existing.id} ({existing.name!r}). Upload it with another mapping or options to "
        "read it differently.",
        code="duplicate_source",
        existing_source_id=existing.id,
    )


def create_source(
    *,
    session: SessionLike,
    storage: Storage,
    project: Project,
    upload: Upload,
    max_bytes: int,
    limits: Limits | None = None,
    actor: Actor = SYSTEM,
) -> Source:
    """Return the new source built from ``upload``; raise on any problem, storing nothing."""
    _check_names(upload)
    try:
        with _disk_full_is_507():
            return _create(session, storage, project, upload, max_bytes, limits, actor)
    except UploadRejected as exc:
        record_upload_rejected(exc.reason)
        raise
    except PayloadTooLarge:
        record_upload_rejected("too_large")
        raise
    except Conflict:
        record_upload_rejected("duplicate")
        raise
    except InsufficientStorage:
        record_upload_rejected("disk_full")
        raise


DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


@contextlib.contextmanager
def _disk_full_is_507() -> Iterator[None]:
    """Turn "no space left" from any writer (Python, DuckDB, Arrow) into a 507."""
    try:
        yield
    except OSError as exc:
        if exc.errno not in DISK_FULL and "No space left on device" not in str(exc):
            raise
        raise _disk_full() from exc
    except duckdb.Error as exc:
        if "No space left on device" not in str(exc) and "Disk quota exceeded" not in str(exc):
            raise
        raise _disk_full() from exc


def _disk_full() -> InsufficientStorage:
    return InsufficientStorage(
        "The server's data directory is full; the upload was not stored. "
        "Try again once an operator has freed space."
    )


MAX_FILENAME_CHARS = 255


def _check_names(upload: Upload) -> None:
    """Names are shown to other people: refuse NUL, control and bidi characters in them."""
    errors = []
    for name, value in (("name", upload.name), ("file", upload.filename)):
        why = name_problem(value)
        if why is None and len(value) > MAX_FILENAME_CHARS:
            why = f"At most {MAX_FILENAME_CHARS} characters."
        if why:
            errors.append({"field": name, "message": why})
    if errors:
        raise ValidationError("Some fields are invalid; see errors.", errors=errors)


def _create(
    session: SessionLike,
    storage: Storage,
    project: Project,
    upload: Upload,
    max_bytes: int,
    limits: Limits | None,
    actor: Actor,
) -> Source:
    profile = None
    if upload.profile_id is not None:
        profile = _profile(session, project, upload.profile_id)
    mapping, options = merged(profile, upload.mapping, upload.options)
    settings = settings_digest(mapping, options)
    with (
        storage.temp_path(Path(upload.filename).suffix.lower()[:16]) as raw,
        storage.temp_path(".parquet") as parquet,
    ):
        sha256, size = _copy_and_hash(upload.stream, raw, max_bytes)
        existing = _existing(session, project.id, sha256, settings)
        if existing is not None:
            raise _duplicate(existing)
        result = ingest_file(
            raw,
            parquet,
            filename=upload.filename,
            mapping=mapping,
            options=options,
            limits=limits,
            temp_dir=storage.tmp_dir,
        )
        digest = _Digest(sha256, settings, size, profile.id if profile else None)
        return _publish(session, storage, project, actor, upload, result, parquet, digest)


@dataclass(frozen=True)
class _Digest:
    sha256: str
    settings: str
    size: int
    profile_id: int | None


def _profile(session: SessionLike, project: Project, profile_id: int) -> SourceProfile:
    try:
        return get_profile(session=session, project=project, profile_id=profile_id)
    except NotFound:
        raise ValidationError(
            f"Profile {profile_id} does not exist in this project.",
            errors=[{"field": "profile_id", "message": f"no profile {profile_id} in this project"}],
        ) from None


def _publish(
    session: SessionLike,
    storage: Storage,
    project: Project,
    actor: Actor,
    upload: Upload,
    result: IngestResult,
    parquet: Path,
    digest: _Digest,
) -> Source:
    relative = storage.new_source_path(project.id)
    source = Source(
        project_id=project.id,
        name=upload.name,
        filename=upload.filename,
        format=result.detected_options.get("format", "csv"),
        sha256=digest.sha256,
        settings_sha256=digest.settings,
        profile_id=digest.profile_id,
        statements=result.statements,
        skipped_lines=result.skipped_lines,
        fields=result.fields,
        has_key=result.has_key,
        size_bytes=digest.size,
        row_count=result.row_count,
        path=relative,
        options=result.detected_options,
        mapping=result.mapping,
        schema=result.schema,
        columns=list(result.columns),
        amount_scale=result.amount_scale,
        sums={k: str(v) for k, v in result.sums.items()},
        min_date=_as_date(result.min_date),
        max_date=_as_date(result.max_date),
        created_by_id=actor.id,
    )
    session.add(source)
    try:
        session.flush()
        record(
            session=session,
            actor=actor,
            action="source.create",
            object_type="source",
            object_id=source.id,
            project_id=project.id,
            after=snapshot(source, AUDITED),
        )
        storage.move_into_place(parquet, relative)
        session.commit()
    except IntegrityError:
        session.rollback()
        storage.remove(relative)
        existing = _existing(session, project.id, digest.sha256, digest.settings)
        if existing is None:
            raise
        raise _duplicate(existing) from None
    except BaseException:
        session.rollback()
        storage.remove(relative)
        raise
    return source


AUDITED = ("name", "filename", "sha256", "row_count", "sums", "profile_id")


def _as_date(value: Any) -> Any:
    if value is None or isinstance(value, date):
        return value
    return date.fromisoformat(str(value))


def get_sources(
    *, session: SessionLike, project: Project, page: int = 1, per_page: int = 50
) -> Page[Source]:
    """Return a page of the project's sources, newest first."""
    query = (
        select(Source)
        .where(Source.project_id == project.id)
        .order_by(Source.created_at.desc(), Source.id.desc())
    )
    with db_query_timer("select", "sources"):
        return paginate(session, query, page=page, per_page=per_page)


def get_source(*, session: SessionLike, project: Project, source_id: int) -> Source:
    """Return the project's source ``source_id`` or raise NotFound (also for other projects')."""
    with db_query_timer("select", "sources"):
        source = session.get(Source, source_id)
    if source is None or source.project_id != project.id:
        raise NotFound(f"Source {source_id} does not exist in this project.")
    return source


CANONICAL = ("row", "key", "amount", "date", "currency", "description")


def get_rows(
    *, storage: Storage, source: Source, page: int = 1, per_page: int = 50
) -> Page[dict[str, Any]]:
    """Return a page of the source's canonical columns, in file order, amounts as exact strings."""
    items = _read_rows(
        str(storage.path(source.path)), per_page=per_page, offset=(page - 1) * per_page
    )
    return Page(items=items, page=page, per_page=per_page, total=source.row_count)


def _read_rows(path: str, *, per_page: int, offset: int) -> list[dict[str, Any]]:
    con = cursor()
    try:
        rows = con.execute(
            "SELECT row, key, CAST(amount AS VARCHAR), CAST(date AS VARCHAR), currency, "
            "description FROM read_parquet(?) ORDER BY row LIMIT ? OFFSET ?",
            [path, per_page, offset],
        ).fetchall()
    finally:
        con.close()
    return [dict(zip(CANONICAL, row, strict=True)) for row in rows]


def delete_source(
    *,
    session: SessionLike,
    storage: Storage,
    source: Source,
    in_use: Callable[[Source], str | None] = lambda s: None,
    actor: Actor = SYSTEM,
) -> None:
    """Delete the source and its file; refused while ``in_use`` names a job using it."""
    reason = in_use(source)
    if reason:
        raise Conflict(f"Source {source.id} is in use by {reason}.", code="source_in_use")
    path = source.path
    record(
        session=session,
        actor=actor,
        action="source.delete",
        object_type="source",
        object_id=source.id,
        project_id=source.project_id,
        before=snapshot(source, AUDITED),
    )
    session.delete(source)
    session.commit()
    storage.remove(path)
    storage.remove(storage.search_path(path))
