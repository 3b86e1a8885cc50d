"""The HTTP form of errors: every error leaves the app as ``application/problem+json``.

``register_error_handlers`` turns domain errors (``recon.errors``), werkzeug's
HTTP exceptions, webargs' validation messages and database failures into one
body shape, with a request id and never a stack trace.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from flask import Flask, Response, g, json
from sqlalchemy import exc as sa_exc
from werkzeug.exceptions import HTTPException

from instrumentation import record_rate_limited
from recon.errors import (
    APIError,
    BadRequest,
    Conflict,
    Forbidden,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    ServiceUnavailable,
    Unauthorized,
    ValidationError,
)

log = logging.getLogger("recon.errors")

PROBLEM_JSON = "application/problem+json"

_HTTP_CODES = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    405: MethodNotAllowed,
    409: Conflict,
    413: PayloadTooLarge,
    422: ValidationError,
    429: RateLimited,
    503: ServiceUnavailable,
}


def problem_response(error: APIError) -> Response:
    """Return ``error`` as a problem+json response carrying the request id."""
    body = error.to_problem()
    request_id = g.get("request_id")
    if request_id:
        body.setdefault("request_id", request_id)
    response = Response(json.dumps(body), status=error.status, mimetype=PROBLEM_JSON)
    for name, value in error.headers.items():
        response.headers[name] = value
    return response


def metrics_unauthorized() -> dict[str, Any]:
    """Return the problem body of a scrape without the metrics bearer token."""
    return Unauthorized(
        "A valid metrics bearer token is required.", code="metrics_unauthorized"
    ).to_problem()


def _field_errors(messages: dict, prefix: str = "") -> list[dict]:
    """Flatten webargs' ``{location: {field: [msg]}}`` into ``[{field, message}]``."""
    out: list[dict] = []
    for key, value in messages.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict):
            out.extend(_field_errors(value, name))
        else:
            for message in value if isinstance(value, list) else [value]:
                out.append({"field": name, "message": str(message)})
    return out


def _from_http_exception(exc: HTTPException) -> APIError:
    data = getattr(exc, "data", None) or {}
    messages = data.get("messages")
    status = exc.code or 500
    if messages is not None and status in (400, 422):
        # webargs: a body that is not JSON arrives as 400; both are the client's content.
        errors = []
        for location, fields in messages.items():
            errors.extend(
                _field_errors(
                    fields if isinstance(fields, dict) else {"_": fields},
                    "" if location in ("json", "form", "files") else location,
                )
            )
        malformed = any(e["message"] == "Invalid JSON body." for e in errors)
        return ValidationError(
            "The request body is not valid JSON."
            if malformed
            else "Some fields are invalid; see errors.",
            code="malformed_json" if malformed else "validation_error",
            errors=errors,
        )
    cls = _HTTP_CODES.get(status, APIError)
    error = cls(exc.description if cls is not APIError else None)
    if cls is APIError:
        error.status = status
    if status == 405 and getattr(exc, "valid_methods", None):
        error.headers["Allow"] = ", ".join(getattr(exc, "valid_methods", None) or [])
    if status == 429:
        error.detail = f"Too many requests: {exc.description}. Retry later."
    return error


# SQLSTATE classes that mean "the server is not there or not taking work right now".
_UNAVAILABLE_SQLSTATES = ("08", "53", "57P")


def database_unavailable(exc: Exception) -> bool:
    """Whether a DB error means the database can't be reached (retry) rather than a bug."""
    if isinstance(exc, sa_exc.InterfaceError | sa_exc.TimeoutError):
        return True
    if not isinstance(exc, sa_exc.DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    sqlstate = getattr(exc.orig, "sqlstate", None)
    if sqlstate is not None:
        return sqlstate.startswith(_UNAVAILABLE_SQLSTATES)
    message = str(exc.orig).lower()
    # psycopg raises connect failures without a SQLSTATE; SQLite reports a busy file.
    return any(
        text in message
        for text in (
            "connection",
            "could not connect",
            "timeout",
            "database is locked",
            "unable to open",
        )
    )


def register_error_handlers(app: Flask) -> None:
    """Make every error leave as problem+json (runs after flask-smorest's own handler)."""

    @app.errorhandler(APIError)
    def handle_api_error(error: APIError) -> Response:
        return problem_response(error)

    @app.errorhandler(HTTPException)
    def handle_http(exc: HTTPException) -> Response:
        if exc.code == 429:
            record_rate_limited()
        response = problem_response(_from_http_exception(exc))
        if exc.code == 429 and "Retry-After" not in response.headers:
            retry = getattr(exc, "retry_after", None) or 60
            response.headers["Retry-After"] = str(retry)
        return response

    @app.errorhandler(sa_exc.IntegrityError)
    def handle_integrity(exc: sa_exc.IntegrityError) -> Response:
        from recon.extensions import db

        db.session.rollback()
        return problem_response(
            Conflict(
                "The change conflicts with existing data (a duplicate or a missing reference).",
                code="integrity_error",
            )
        )

    @app.errorhandler(sa_exc.OperationalError)
    @app.errorhandler(sa_exc.InterfaceError)
    @app.errorhandler(sa_exc.TimeoutError)
    def handle_db_down(exc: Exception) -> Response:
        from recon.extensions import db

        # The connection may be gone; there may be nothing to roll back.
        with contextlib.suppress(sa_exc.SQLAlchemyError):
            db.session.rollback()
        if not database_unavailable(exc):
            return handle_unexpected(exc)
        log.error("database unavailable: %s", exc)
        return problem_response(
            ServiceUnavailable(
                "The database is not answering; try again shortly.",
                code="database_unavailable",
                headers={"Retry-After": "5"},
            )
        )

    @app.errorhandler(Exception)
    def handle_unexpected(exc: Exception) -> Response:
        log.exception("unhandled error")
        return problem_response(
            APIError("Something went wrong on our side. Quote the request id when you report it.")
        )
