"""``Idempotency-Key`` on POST: a retry with the same key and body replays the first response.

The key is claimed by inserting a row before the work runs, so two concurrent
requests with one key can't both create something: the second one finds the
claim and waits for the first response, or, if none arrives in time, gets 409.
The same key with a different body is 422.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import Response, g, request
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from recon.errors import Conflict, ValidationError
from recon.extensions import db
from recon.jobs.models import IdempotencyKey

HEADER = "Idempotency-Key"
WAIT_SECONDS = 10.0


def _request_hash() -> str:
    digest = hashlib.sha256()
    digest.update(request.path.encode())
    digest.update(json.dumps(request.args.to_dict(flat=False), sort_keys=True).encode())
    if request.mimetype == "multipart/form-data":
        digest.update(json.dumps(request.form.to_dict(flat=False), sort_keys=True).encode())
        for name, file in sorted(request.files.items(multi=True)):
            digest.update(name.encode() + (file.filename or "").encode())
            while chunk := file.stream.read(1 << 20):
                digest.update(chunk)
            file.stream.seek(0)
    else:
        digest.update(request.get_data())
    return digest.hexdigest()


def _replay(row: IdempotencyKey) -> Response:
    response = Response(
        json.dumps(row.response), status=row.status_code, mimetype="application/json"
    )
    for name, value in (row.headers or {}).items():
        response.headers[name] = value
    response.headers["Idempotent-Replayed"] = "true"
    return response


def _claim(key: str, scope: str, request_hash: str) -> IdempotencyKey | None:
    """Insert the claim; return the existing row instead when the key is taken."""
    user_id = g.user.id
    try:
        with db.session.begin_nested():
            db.session.add(
                IdempotencyKey(user_id=user_id, scope=scope, key=key, request_hash=request_hash)
            )
        db.session.commit()
        return None
    except IntegrityError:
        db.session.rollback()
    row = db.session.scalars(
        select(IdempotencyKey).where(
            IdempotencyKey.user_id == user_id,
            IdempotencyKey.scope == scope,
            IdempotencyKey.key == key,
        )
    ).one()
    db.session.commit()
    return row


def _existing_response(row: IdempotencyKey, request_hash: str, key: str) -> Response:
    if row.request_hash != request_hash:
        raise ValidationError(
            f"Idempotency-Key {key!r} was used with a different request.",
            code="idempotency_key_reused",
        )
    deadline = time.monotonic() + WAIT_SECONDS
    while row.status_code is None and time.monotonic() < deadline:
        # End the transaction before waiting: holding it would block the first request.
        db.session.rollback()
        time.sleep(0.05)
        db.session.refresh(row)
    if row.status_code is None:
        raise Conflict(
            f"A request with Idempotency-Key {key!r} is still in progress.",
            code="idempotency_in_progress",
            headers={"Retry-After": "1"},
        )
    return _replay(row)


def idempotent(view: Callable[..., Any]) -> Callable[..., Any]:
    """Make a POST view honour the Idempotency-Key header (successful responses are kept)."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        key = request.headers.get(HEADER, "").strip()
        if not key:
            return view(*args, **kwargs)
        if len(key) > 200:
            raise ValidationError(
                "Idempotency-Key is longer than 200 characters.", code="idempotency_key_invalid"
            )
        scope = f"{request.method} {request.url_rule.rule if request.url_rule else request.path}"
        request_hash = _request_hash()
        existing = _claim(key, scope, request_hash)
        if existing is not None:
            return _existing_response(existing, request_hash, key)
        try:
            response = view(*args, **kwargs)
        except BaseException:
            _release(key, scope)
            raise
        return _remember(key, scope, response)

    return wrapper


def _release(key: str, scope: str) -> None:
    # A failed request must not block a retry with the same key.
    db.session.rollback()
    row = db.session.scalars(
        select(IdempotencyKey).where(
            IdempotencyKey.user_id == g.user.id,
            IdempotencyKey.scope == scope,
            IdempotencyKey.key == key,
        )
    ).first()
    if row is not None and row.status_code is None:
        db.session.delete(row)
        db.session.commit()


def _remember(key: str, scope: str, response: Any) -> Any:
    from flask import current_app

    rv = current_app.make_response(response)
    row = db.session.scalars(
        select(IdempotencyKey).where(
            IdempotencyKey.user_id == g.user.id,
            IdempotencyKey.scope == scope,
            IdempotencyKey.key == key,
        )
    ).one()
    if rv.status_code >= 400:
        db.session.delete(row)
    else:
        row.status_code = rv.status_code
        row.response = rv.get_json(silent=True)
        row.headers = {k: v for k, v in rv.headers.items() if k in ("Location",)}
    db.session.commit()
    return rv
