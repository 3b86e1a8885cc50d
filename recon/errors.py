"""Domain errors and their HTTP form.

Services raise these; views never build error responses. Every error leaves
the app as RFC 9457 problem+json: ``{type, title, status, detail, code,
errors?}``. ``code`` is stable: clients switch on it, not on ``detail``.
"""

from __future__ import annotations

from typing import Any

PROBLEM_BASE = "https://recon.dev/problems/"


class APIError(Exception):
    """Base of every error the API answers with; subclasses set status and code."""

    status = 500
    code = "internal_error"
    title = "Internal server error"

    def __init__(
        self,
        detail: str | None = None,
        *,
        code: str | None = None,
        errors: Any = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        if code is not None:
            self.code = code
        self.errors = errors
        self.headers = headers or {}
        self.extra = extra

    def to_problem(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": PROBLEM_BASE + self.code,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            "code": self.code,
        }
        if self.errors is not None:
            body["errors"] = self.errors
        body.update(self.extra)
        return body


class BadRequest(APIError):
    status = 400
    code = "bad_request"
    title = "Bad request"


class Unauthorized(APIError):
    status = 401
    code = "unauthorized"
    title = "Authentication required"


class Forbidden(APIError):
    status = 403
    code = "forbidden"
    title = "Forbidden"


class NotFound(APIError):
    status = 404
    code = "not_found"
    title = "Not found"


class MethodNotAllowed(APIError):
    status = 405
    code = "method_not_allowed"
    title = "Method not allowed"


class Conflict(APIError):
    status = 409
    code = "conflict"
    title = "Conflict"


class PayloadTooLarge(APIError):
    status = 413
    code = "payload_too_large"
    title = "Payload too large"


class ValidationError(APIError):
    """422: the request was understood but its content is invalid.

    ``errors`` is a list of field problems ``{field, message}`` or row problems
    ``{row, column, value, message}``.
    """

    status = 422
    code = "validation_error"
    title = "Validation failed"


class RateLimited(APIError):
    status = 429
    code = "rate_limited"
    title = "Too many requests"


class ServiceUnavailable(APIError):
    status = 503
    code = "service_unavailable"
    title = "Service unavailable"


class InsufficientStorage(APIError):
    """507: the server's disk (RECON_DATA_DIR) is full; nothing was stored."""

    status = 507
    code = "insufficient_storage"
    title = "Insufficient storage"


# --- HTTP form -----------------------------------------------------------------------------
# Imported here, not at the top, so services can import the error classes without Flask.

import contextlib  # noqa: E402
import logging  # noqa: E402

from flask import Flask, Response, g, json  # noqa: E402
from sqlalchemy import exc as sa_exc  # noqa: E402
from werkzeug.exceptions import HTTPException  # noqa: E402

log = logging.getLogger("recon.errors")

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
    body = error.to_problem()
    request_id = g.get("request_id")
    if request_id:
        body.setdefault("request_id", request_id)
    response = Response(json.dumps(body), status=error.status, mimetype="application/problem+json")
    for name, value in error.headers.items():
        response.headers[name] = value
    return response


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
            from instrumentation import record_rate_limited

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
