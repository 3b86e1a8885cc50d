"""Domain errors: what services raise when a request can not be done.

Services raise these; views never build error responses. Each error knows the
RFC 9457 problem body it becomes (``{type, title, status, detail, code,
errors?}``); ``code`` is stable, clients switch on it, not on ``detail``.
Nothing here imports Flask: the HTTP handlers that send these bodies are in
``recon.problems``.
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
