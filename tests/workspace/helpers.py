"""A signed-in browser, simulated: the token in the cookie, the CSRF token as htmx sends it."""

from __future__ import annotations

import re
from typing import Any

from flask import g
from flask.testing import FlaskClient

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


class Page:
    """A test client signed in to the workspace as one user."""

    def __init__(self, client: FlaskClient, token: str | None) -> None:
        self.client = client
        if token is not None:
            client.set_cookie("recon_token", token)
        # The tests hold an app context, which requests then share: Flask-WTF keeps the token
        # it made for the last client in g, and would not give this client's session one.
        g.pop("csrf_token", None)
        self.csrf = CSRF.search(client.get("/login").get_data(as_text=True)).group(1)

    def get(self, url: str, htmx: bool = False, **kw: Any) -> Any:
        headers = {"HX-Request": "true"} if htmx else {}
        return self.client.get(url, headers={**headers, **kw.pop("headers", {})}, **kw)

    def post(
        self, url: str, data: Any = None, htmx: bool = True, csrf: bool = True, **kw: Any
    ) -> Any:
        headers = {"HX-Request": "true"} if htmx else {}
        if csrf:
            headers["X-CSRFToken"] = self.csrf
        return self.client.post(
            url, data=data or {}, headers={**headers, **kw.pop("headers", {})}, **kw
        )


def signed_in(app: Any, factory: Any, user: Any) -> Page:
    return Page(app.test_client(), factory.token(user))
