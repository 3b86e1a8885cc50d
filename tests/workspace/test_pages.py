"""The workspace in-process: signing in and out, the cookie kept away from the API, CSRF on
every change, escaping, errors as pages, and what each page shows."""

from __future__ import annotations

import io

import pytest
from flask import g

from recon.extensions import db
from recon.projects.models import Project
from tests.conftest import PASSWORD
from tests.review.helpers import build_world
from tests.workspace.helpers import Page, signed_in

XSS = "<img src=x onerror=alert(1)>"


@pytest.fixture
def world(app, factory, as_user):
    return build_world(app, factory, as_user)


def sign_in_form(client, username, password=PASSWORD, next_url="/"):
    page = Page(client, None)
    return page, page.post(
        "/login",
        data={
            "username": username,
            "password": password,
            "next": next_url,
            "csrf_token": page.csrf,
        },
        htmx=False,
        csrf=False,
    )


def test_anonymous_visitors_are_sent_to_sign_in_and_come_back(app, factory):
    client = app.test_client()
    response = client.get("/projects/1/exceptions?kind=break")
    assert response.status_code == 303
    assert response.headers["Location"] == "/login?next=/projects/1/exceptions?kind%3Dbreak"
    htmx = client.get("/projects/1", headers={"HX-Request": "true"})
    assert htmx.status_code == 200 and htmx.headers["HX-Redirect"].startswith("/login?next=")
    user = factory.user()
    _, signed = sign_in_form(client, user.username, next_url="/projects/1/exceptions")
    assert signed.status_code == 303 and signed.headers["Location"] == "/projects/1/exceptions"
    _, elsewhere = sign_in_form(app.test_client(), user.username, next_url="//evil.example/")
    assert elsewhere.headers["Location"] == "/"  # never to another host


def test_sign_in_cookie_is_httponly_lax_and_sign_out_revokes_it(app, factory):
    user = factory.user()
    client = app.test_client()
    page, response = sign_in_form(client, user.username)
    cookie = next(c for c in response.headers.getlist("Set-Cookie") if c.startswith("recon_token="))
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # plain HTTP with RECON_COOKIE_SECURE=auto
    token = cookie.split(";", 1)[0].split("=", 1)[1]
    assert client.get("/").status_code == 200
    out = page.post("/logout", htmx=False)
    assert out.status_code == 303 and out.headers["Location"] == "/login?signed_out=1"
    assert client.get("/").status_code == 303  # the cookie is gone
    client.set_cookie("recon_token", token)  # and the token is dead, not only forgotten
    assert client.get("/").status_code == 303
    api = client.get("/api/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert api.status_code == 401


def test_wrong_password_is_refused_without_a_cookie(app, factory):
    user = factory.user()
    _, response = sign_in_form(app.test_client(), user.username, password="wrong password!")
    assert response.status_code == 401
    assert "Invalid username or password" in response.get_data(as_text=True)
    assert not any(c.startswith("recon_token=") for c in response.headers.getlist("Set-Cookie"))


@pytest.mark.parametrize(
    ("setting", "https", "secure"),
    [("true", False, True), ("false", True, False), ("auto", True, True), ("auto", False, False)],
)
def test_cookie_secure_flag_follows_the_setting(app, factory, setting, https, secure):
    user = factory.user()
    app.config["RECON_COOKIE_SECURE"] = setting
    try:
        client = app.test_client()
        g.pop("csrf_token", None)  # see tests/workspace/helpers.py
        base = {"base_url": "https://localhost"} if https else {}
        page = client.get("/login", **base).get_data(as_text=True)
        csrf = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
        response = client.post(
            "/login",
            data={"username": user.username, "password": PASSWORD, "csrf_token": csrf},
            headers={"Referer": "https://localhost/login"} if https else {},
            **base,
        )
    finally:
        app.config["RECON_COOKIE_SECURE"] = "auto"
    cookies = response.headers.getlist("Set-Cookie")
    token = next(c for c in cookies if c.startswith("recon_token="))
    assert ("Secure" in token) is secure


def test_the_cookie_never_authenticates_the_api_nor_a_bearer_token_the_pages(app, factory):
    user = factory.user()
    page = signed_in(app, factory, user)
    assert page.get("/").status_code == 200
    assert page.client.get("/api/projects").status_code == 401
    assert page.client.post("/api/projects", json={"name": "via cookie"}).status_code == 401
    bearer = app.test_client().get("/", headers={"Authorization": f"Bearer {factory.token(user)}"})
    assert bearer.status_code == 303


def test_every_change_needs_the_csrf_token(app, factory):
    user = factory.user()
    page = signed_in(app, factory, user)
    for token in (None, "forged-token"):
        headers = {} if token is None else {"X-CSRFToken": token}
        response = page.post("/projects", data={"name": "csrf victim"}, csrf=False, headers=headers)
        assert response.status_code == 400
        assert 'data-code="csrf_failed"' in response.get_data(as_text=True)
    # The sign-in form too (login CSRF), and a plain form post without the field.
    assert (
        page.post("/login", data={"username": "x", "password": "y"}, csrf=False).status_code == 400
    )
    assert db.session.query(Project).filter_by(name="csrf victim").count() == 0
    made = page.post("/projects", data={"name": "csrf ok"})
    assert made.status_code == 200 and made.headers["HX-Redirect"].startswith("/projects/")
    assert db.session.query(Project).filter_by(name="csrf ok").count() == 1


def test_text_from_people_and_files_is_escaped_everywhere(app, factory):
    owner = factory.user()
    page = signed_in(app, factory, owner)
    made = page.post("/projects", data={"name": XSS, "description": XSS})
    pid = int(made.headers["HX-Redirect"].rsplit("/", 1)[1])
    csv = f"Reference,Amount,Date,Description\n{XSS},1.00,2024-01-01,{XSS}\nB,2.00,2024-01-02,x\n"
    upload = page.post(
        f"/projects/{pid}/upload",
        data={"name": XSS, "file": (io.BytesIO(csv.encode()), "<b>x</b>.csv")},
        content_type="multipart/form-data",
    )
    sid = int(upload.headers["HX-Redirect"].rsplit("/", 1)[1])
    for url in (
        "/",
        f"/projects/{pid}",
        f"/projects/{pid}/sources/{sid}",
        f"/projects/{pid}/audit",
    ):
        html = page.get(url).get_data(as_text=True)
        assert XSS not in html, url
        assert "&lt;img src=x onerror=alert(1)&gt;" in html, url
    search = page.get(f"/?q={XSS}", htmx=True).get_data(as_text=True)
    assert XSS not in search


def test_the_pages_carry_a_csp_without_inline_scripts_and_load_only_this_site(app, factory):
    page = signed_in(app, factory, factory.user())
    response = page.get("/")
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self';" in csp and "style-src 'self';" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    html = response.get_data(as_text=True)
    assert "<script>" not in html and " style=" not in html
    assert "http://" not in html and "https://" not in html
    assert response.headers["Cache-Control"] == "no-store"


def test_api_docs_load_the_vendored_swagger_ui(client):
    response = client.get("/api/docs")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "/static/vendor/swagger-ui-5.35.0/swagger-ui-bundle.js" in html
    assert "cdn" not in html and "<script>" not in html
    assert "unsafe-inline" not in response.headers["Content-Security-Policy"]
    bundle = client.get("/static/vendor/swagger-ui-5.35.0/swagger-ui-bundle.js")
    assert (
        bundle.status_code == 200
        and b"SwaggerUIBundle" in bundle.data[:200_000] + bundle.data[-5000:]
    )
    assert (
        "immutable" in bundle.headers["Cache-Control"]
        and "max-age=31536000" in bundle.headers["Cache-Control"]
    )


def test_static_files_are_cached_and_never_leave_their_folder(client):
    css = client.get("/static/app.css")
    assert css.status_code == 200 and "max-age=300" in css.headers["Cache-Control"]
    for path in ("/static/../__init__.py", "/static/%2e%2e/__init__.py", "/static/nope.js"):
        assert client.get(path).status_code == 404


def test_errors_are_pages_with_their_code_and_never_500(world, factory):
    page = signed_in(world.app, factory, world.owner.user)
    pid = world.pid
    for url in (
        f"/projects/{pid}/jobs/{world.job.id}/results?page=99999999999999999999",
        f"/projects/{pid}/jobs/{world.job.id}/results?min_amount=1e-99999",
        f"/projects/{pid}/exceptions?min_amount=lots&sort=sideways",
        f"/projects/{pid}/exceptions?ids=0",
        f"/projects/{pid}/audit?per_page=100000",
        "/?page=0",
    ):
        response = page.get(url)
        assert response.status_code == 422, url
        assert 'data-code="validation_error"' in response.get_data(as_text=True), url
    for url in (
        f"/projects/{10**30}",
        f"/projects/{pid}/jobs/{2**63}",
        f"/projects/{pid}/sources/999999",
    ):
        assert page.get(url).status_code == 404, url
    as_json = page.get(
        f"/projects/{pid}/jobs/999999", headers={"Accept": "application/problem+json"}
    )
    assert as_json.status_code == 404 and as_json.get_json()["code"] == "not_found"
    htmx = page.post(f"/projects/{pid}/exceptions/{world.eid('left', 2)}/accept")  # a break
    assert htmx.status_code == 409 and htmx.headers["HX-Retarget"] == "#flash"
    assert "not a suggestion" in htmx.get_data(as_text=True)


def test_viewers_see_no_write_controls_and_are_refused(world, factory):
    page = signed_in(world.app, factory, world.viewer.user)
    html = page.get(f"/projects/{world.pid}").get_data(as_text=True)
    assert "Upload a file" not in html and "New rule set" not in html
    refused = page.post(f"/projects/{world.pid}/exceptions/{world.eid('left', 2)}/assign")
    assert refused.status_code == 403
    outsider = signed_in(world.app, factory, factory.user())
    assert outsider.get(f"/projects/{world.pid}").status_code == 404


def test_project_page_lists_sources_rules_jobs_and_members(world, factory):
    page = signed_in(world.app, factory, world.owner.user)
    html = page.get(f"/projects/{world.pid}").get_data(as_text=True)
    for text in (
        "bank",
        "ledger",
        f"Job {world.job.id}",
        world.editor.user.username,
        "Add or change member",
    ):
        assert text in html
    added = page.post(
        f"/projects/{world.pid}/members", data={"username": "nobody-here", "role": "editor"}
    )
    assert added.status_code == 422 and "No user is called" in added.get_data(as_text=True)
    newcomer = factory.user()
    ok = page.post(
        f"/projects/{world.pid}/members", data={"username": newcomer.username, "role": "viewer"}
    )
    assert ok.status_code == 200
    assert signed_in(world.app, factory, newcomer).get(f"/projects/{world.pid}").status_code == 200
