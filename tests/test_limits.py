"""Hostile input: every case is a clear 4xx that stores nothing, never a 500 (DESIGN.md 19)."""

from __future__ import annotations

import io
import json
import re

import pytest
from werkzeug.test import EnvironBuilder

from recon import create_app
from recon.extensions import db
from recon.jobs.models import Job
from recon.projects.models import Project
from tests.conftest import app_config, migrate_schema

HUGE = 2**31  # one past what an INTEGER id column holds (PostgreSQL raises on it)
RULES = {"passes": [{"name": "exact", "match_on": ["key"]}]}


def _routes(app, method):
    for rule in app.url_map.iter_rules():
        if method in (rule.methods or ()) and rule.rule.startswith("/api/"):
            yield rule


def _fill(rule, ids):
    """The rule's URL with each <int:...> replaced by the given id (or a real one)."""
    return re.sub(r"<int:(\w+)>", lambda m: str(ids.get(m.group(1), HUGE)), rule.rule)


@pytest.mark.parametrize("huge", [HUGE, 2**63, 10**22])
def test_ids_past_what_a_column_holds_in_any_path_are_404(app, admin, huge):
    project = admin.post("/api/projects", json={"name": f"ids {huge}"}).get_json()
    seen = 0
    for rule in _routes(app, "GET"):
        if "<int:" not in rule.rule:
            continue
        # Every id huge, then only the ones below the project (the project real).
        for ids in ({}, {"pid": project["id"]}):
            url = re.sub(
                r"<int:(\w+)>", lambda m, ids=ids: str(ids.get(m.group(1), huge)), rule.rule
            )
            if str(huge) not in url:
                continue
            response = admin.get(url)
            assert response.status_code == 404, (url, response.get_json())
            assert response.mimetype == "application/problem+json"
            seen += 1
    assert seen >= 10  # the routes exist: users, projects, sources, jobs, exceptions, ...


@pytest.mark.parametrize("page", ["10000000000000000000", str(10**13), "0", "-1", "1e3", "x"])
def test_page_numbers_out_of_range_on_every_list_are_422(app, admin, page):
    project = admin.post("/api/projects", json={"name": f"pages {page}"}).get_json()
    lists = 0
    for rule in _routes(app, "GET"):
        url = _fill(rule, {"pid": project["id"]})
        if str(HUGE) in url:
            continue  # a list nested under another object: covered by the id test
        response = admin.get(f"{url}?page={page}")
        assert response.status_code != 500, (url, response.get_json())
        if response.status_code == 422 and "query.page" in json.dumps(response.get_json()):
            lists += 1
    assert lists >= 6  # users, projects, members?, sources, jobs, exceptions, audit, rulesets


@pytest.mark.parametrize(
    ("url", "body", "field"),
    [
        ("/api/projects/{pid}/members", {"user_id": HUGE, "role": "editor"}, "user_id"),
        (
            "/api/projects/{pid}/jobs",
            {"left_source_id": HUGE, "right_source_id": 1, "rules": RULES},
            "left_source_id",
        ),
        (
            "/api/projects/{pid}/jobs",
            {"left_source_id": 1, "right_source_id": 1, "ruleset_id": -5},
            "ruleset_id",
        ),
        (
            "/api/projects/{pid}/jobs/1/manual-matches",
            {"left_rows": [2**63], "right_rows": [1]},
            "left_rows",
        ),
    ],
)
def test_integers_out_of_range_in_bodies_are_422(admin, url, body, field):
    project = admin.post("/api/projects", json={"name": f"ints {url} {field}"}).get_json()
    response = admin.post(url.format(pid=project["id"]), json=body)
    assert response.status_code == 422, response.get_json()
    assert any(e["field"].startswith(field) for e in response.get_json()["errors"])


@pytest.mark.parametrize("url", ["/api/auth/login", "/api/projects"])
def test_json_nested_10000_deep_is_422_even_when_public(client, admin, url):
    deep = "[" * 10_000 + "]" * 10_000
    caller = client if url == "/api/auth/login" else admin
    response = caller.post(url, data=deep, content_type="application/json")
    assert response.status_code == 422
    assert response.get_json()["code"] == "malformed_json"
    assert "Nested deeper than 64 levels" in response.get_json()["detail"]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ('{"name": "\\ud800x"}', "lone surrogates"),
        ('{"name": "a\\u0000b"}', "NUL"),
        ('{"name": "ok", "description": "\\udfff"}', "lone surrogates"),
        ('{"name": 1e400}', "out of range"),
        ('{"name": NaN}', "not a JSON number"),
        ('{"name": "' + "\xff" + '"}', "not valid JSON"),
    ],
)
def test_text_a_database_can_not_hold_is_422_and_stores_nothing(admin, raw, message):
    before = db.session.query(Project).count()
    response = admin.post(
        "/api/projects", data=raw.encode("latin-1"), content_type="application/json"
    )
    assert response.status_code == 422, response.get_json()
    assert message in response.get_json()["detail"]
    assert db.session.query(Project).count() == before


@pytest.mark.parametrize("name", ["evil\u202etxt.exe", "tab\tname", "bell\x07", "nul\x00x"])
def test_control_and_bidi_characters_in_names_are_refused(admin, name):
    response = admin.post("/api/projects", json={"name": name})
    assert response.status_code == 422
    project = admin.post("/api/projects", json={"name": f"fine {len(name)}"}).get_json()
    renamed = admin.patch(f"/api/projects/{project['id']}", json={"name": name})
    assert renamed.status_code == 422
    ruleset = admin.post(
        f"/api/projects/{project['id']}/rulesets", json={"name": name, "rules": RULES}
    )
    assert ruleset.status_code == 422


def test_names_with_other_unicode_are_kept_as_given(admin):
    name = "Rapprochement été <b>2026</b> — Zürich"
    response = admin.post("/api/projects", json={"name": name})
    assert response.status_code == 201
    assert response.get_json()["name"] == name


def test_nul_in_a_query_string_is_422(admin):
    response = admin.get("/api/projects?q=a%00b")
    assert response.status_code == 422
    assert response.get_json()["errors"][0]["field"] == "q"


def test_a_json_body_over_the_limit_is_413_before_it_is_parsed(tmp_path):
    app = create_app(app_config(tmp_path, f"sqlite:///{tmp_path / 'x.db'}", RECON_MAX_JSON_KB=4))
    migrate_schema(app)
    client = app.test_client()
    body = json.dumps({"username": "u" * 5000, "password": "p"})
    response = client.post("/api/auth/login", data=body, content_type="application/json")
    assert response.status_code == 413
    assert "RECON_MAX_JSON_KB" in response.get_json()["detail"]
    # Without a Content-Length (chunked): the read itself stops at the limit.
    builder = EnvironBuilder(
        path="/api/auth/login",
        method="POST",
        input_stream=io.BytesIO(body.encode()),
        content_type="application/json",
    )
    environ = builder.get_environ()
    environ.pop("CONTENT_LENGTH", None)
    environ["wsgi.input_terminated"] = True
    response = client.open(environ)
    assert response.status_code == 413
    # Under the limit the body is parsed as usual (a 401 for a wrong password).
    small = json.dumps({"username": "u" * 50, "password": "p" * 200})
    response = client.post("/api/auth/login", data=small, content_type="application/json")
    assert response.status_code == 401


@pytest.mark.parametrize("absolute", ["1e400", "9" * 5000, "100000000000000000000"])
def test_tolerances_past_the_digit_limits_of_amounts_are_422_at_post(admin, factory, absolute):
    project = db.session.get(
        Project, admin.post("/api/projects", json={"name": f"tol {absolute[:9]}"}).get_json()["id"]
    )
    left = factory.source(project, admin.user, name="l")
    right = factory.source(project, admin.user, name="r")
    rules = {
        "passes": [{"name": "t", "match_on": ["key"], "amount_tolerance": {"absolute": absolute}}]
    }
    jobs = db.session.query(Job).count()
    response = admin.post(
        f"/api/projects/{project.id}/jobs",
        json={"left_source_id": left.id, "right_source_id": right.id, "rules": rules},
    )
    assert response.status_code == 422, response.get_json()
    problem = response.get_json()
    assert problem["errors"][0]["field"].endswith("amount_tolerance.absolute")
    assert len(json.dumps(problem)) < 2000  # a sentence, not generated SQL
    assert db.session.query(Job).count() == jobs


def test_rules_and_ruleset_id_together_are_422(admin, factory):
    project = db.session.get(
        Project, admin.post("/api/projects", json={"name": "both"}).get_json()["id"]
    )
    left = factory.source(project, admin.user, name="l")
    right = factory.source(project, admin.user, name="r")
    saved = admin.post(
        f"/api/projects/{project.id}/rulesets", json={"name": "saved", "rules": RULES}
    ).get_json()
    response = admin.post(
        f"/api/projects/{project.id}/jobs",
        json={
            "left_source_id": left.id,
            "right_source_id": right.id,
            "rules": RULES,
            "ruleset_id": saved["id"],
        },
    )
    assert response.status_code == 422
    assert response.get_json()["errors"][0]["field"] == "ruleset_id"
    assert db.session.query(Job).filter_by(project_id=project.id).count() == 0
