"""How workspace views answer: a whole page, or the fragment htmx asked for; errors as pages.

Errors keep their status and stable ``code`` (shown on the page, and as
problem+json to a client that asks for JSON). An htmx request's error goes to
the page's message area (``#flash``) instead of the element that asked.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlsplit

from flask import g, make_response, redirect, render_template, request, url_for
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from recon.errors import APIError, BadRequest, Unauthorized
from recon.problems import problem_response

log = logging.getLogger("recon.workspace")
ERROR_TEMPLATE = "workspace/error.html"
# The API's codes for the HTTP errors werkzeug raises (unknown page, wrong method, ...).
HTTP_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    429: "rate_limited",
}


def is_fragment() -> bool:
    """Whether htmx asked for a part of a page (a history restore wants the whole page)."""
    return (
        request.headers.get("HX-Request") == "true"
        and request.headers.get("HX-History-Restore-Request") != "true"
    )


STANDALONE = "workspace/standalone.html"


def page(template: str, fragment: str | None = None, status: int = 200, **context: Any) -> Any:
    """Render ``fragment`` for htmx when given and asked for, else the whole ``template``
    (``STANDALONE``: the fragment alone on a page, for a part opened without script)."""
    chosen = fragment if fragment and is_fragment() else template
    return render_template(chosen, fragment_name=fragment, **context), status


def go(endpoint: str, **values: Any) -> Response:
    """Send the browser to another page: a redirect, or HX-Redirect for htmx."""
    target = url_for(endpoint, **values)
    if is_fragment():
        response = make_response("", 200)
        response.headers["HX-Redirect"] = target
        return response
    return redirect(target, code=303)


def safe_next(target: str | None) -> str | None:
    """Return ``target`` when it is a path on this site (never another host), else None."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return None
    return target


def _sign_in_again() -> Response:
    # After signing in, come back to the page (a POST's form is gone: back to its page).
    here = request.full_path.rstrip("?") if request.method == "GET" else None
    if here is None and request.referrer:
        parts = urlsplit(request.referrer)
        if parts.netloc == request.host:
            here = parts.path
    target = url_for("workspace.login", next=safe_next(here) or "/")
    if is_fragment():
        response = make_response("", 200)
        response.headers["HX-Redirect"] = target
        return response
    return redirect(target, code=303)


def _as_api_error(error: Exception) -> APIError:
    if isinstance(error, APIError):
        return error
    if isinstance(error, CSRFError):
        return BadRequest(
            f"The form had expired or did not come from this site ({error.description}) "
            "Reload the page and try again.",
            code="csrf_failed",
        )
    if isinstance(error, HTTPException):
        problem = APIError(error.description, code=HTTP_CODES.get(error.code or 500, "http_error"))
        problem.status, problem.title = error.code or 500, error.name
        return problem
    log.exception("unhandled error", exc_info=error)
    return APIError("Something went wrong on our side. Quote the request id when you report it.")


def handle_error(error: Exception) -> Any:
    """Answer a workspace error: sign in again, an error page, or a message for htmx."""
    problem = _as_api_error(error)
    if isinstance(problem, Unauthorized):
        return _sign_in_again()
    best = request.accept_mimetypes.best_match(["text/html", "application/problem+json"])
    if best == "application/problem+json" and not is_fragment():
        return problem_response(problem)
    if is_fragment():
        body = render_template("workspace/_message.html", error=problem)
        response = make_response(body, problem.status)
        response.headers["HX-Retarget"] = "#flash"
        response.headers["HX-Reswap"] = "innerHTML"
        return response
    body = render_template(ERROR_TEMPLATE, error=problem, request_id=g.get("request_id"))
    response = make_response(body, problem.status)
    for name, value in problem.headers.items():
        response.headers[name] = value
    return response
