"""The OpenAPI document is valid OpenAPI 3, and no generated request gets a server error.

Schemathesis generates requests for every operation from the document itself
(valid and invalid ones) and sends them to the app in process, on SQLite and
PostgreSQL. Path ids point at a real project with two sources, a finished job, its
exceptions and a saved rule set, so the bodies and queries reach the services, not
just a 404.

The fuzzed app has a database of its own (committed for real, no per-test rollback),
so the world is built once per backend; an operation that destroys it (deleting the
project) gets a new one before the next operation runs.

``make test`` runs a few examples per operation; ``make fuzz`` many more
(``RECON_FUZZ_EXAMPLES``). Nothing is excluded: every example runs with a token of
its own (a fresh admin), so an operation that revokes tokens or deactivates users
(logout, PATCH/DELETE /users) can't take the fuzzer's credentials away from the
examples that follow.
"""

from __future__ import annotations

import io
import os
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, given, settings
from openapi_spec_validator import validate
from schemathesis.checks import not_a_server_error

from recon import create_app
from recon.auth.service import issue_token
from recon.extensions import db
from recon.jobs.rulesets import save_ruleset
from recon.jobs.service import create_job
from recon.projects.models import Membership, Project, ProjectRole
from recon.review.models import ReconException
from recon.sources.service import Upload, create_source
from recon.users.models import Role, User
from tests.conftest import app_config, migrate_schema, password_hash, throwaway_postgres

EXAMPLES = int(os.environ.get("RECON_FUZZ_EXAMPLES", "6"))
# The fuzzed apps and their worlds are module-scoped: one xdist worker runs the module.
pytestmark = pytest.mark.xdist_group("openapi")
RULES = {
    "passes": [
        {"name": "exact", "match_on": ["key"]},
        {"name": "amount", "match_on": ["amount"], "action": "suggest"},
    ]
}
LEFT = "Reference,Amount,Date\nA1,10.00,2024-01-01\nA2,20.00,2024-01-02\nA3,5.00,2024-01-03\n"
RIGHT = "Reference,Amount,Date\nA1,10.00,2024-01-01\nB2,20.00,2024-01-02\nA3,6.00,2024-01-04\n"


def test_the_openapi_document_is_valid_openapi_3(client):
    spec = client.get("/api/openapi.json").get_json()
    assert spec["openapi"].startswith("3.")
    validate(spec)  # raises on the first problem
    assert len(spec["paths"]) >= 25


def _operations() -> list[str]:
    """Every operation of the document, as schemathesis labels them ("GET /api/users")."""
    with tempfile.TemporaryDirectory() as tmp:
        app = create_app(app_config(Path(tmp), f"sqlite:///{tmp}/spec.db"))
        spec = app.test_client().get("/api/openapi.json").get_json()
    schema = schemathesis.openapi.from_dict(spec)
    return sorted(result.ok().label for result in schema.get_all_operations())


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # schemathesis' own pytest integration (from_fixture) does not run on pytest 9 yet.
    if "operation" in metafunc.fixturenames:
        metafunc.parametrize("operation", _operations())


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def fuzz_app(request: pytest.FixtureRequest, tmp_path_factory) -> Iterator[Flask]:  # noqa: ANN001
    tmp = tmp_path_factory.mktemp("fuzz")
    with ExitStack() as stack:
        url = (
            f"sqlite:///{tmp / 'fuzz.db'}"
            if request.param == "sqlite"
            else stack.enter_context(throwaway_postgres())
        )
        app = create_app(app_config(tmp, url))
        migrate_schema(app)
        yield app
        with app.app_context():
            db.engine.dispose()


def _user(role: Role = Role.admin) -> User:
    user = User(
        username=f"fuzz-{uuid.uuid4().hex[:10]}",
        role=role,
        password_hash=password_hash(),
        active=True,
    )
    db.session.add(user)
    db.session.commit()
    return user


def _source(app: Flask, project: Project, text: str, name: str) -> Any:
    upload = Upload(
        stream=io.BytesIO(text.encode()),
        filename=f"{name}.csv",
        name=name,
        mapping=None,
        options=None,
    )
    return create_source(
        session=db.session,
        storage=app.extensions["recon_storage"],
        project=project,
        upload=upload,
        max_bytes=2**20,
    )


def _build_world(app: Flask) -> dict[str, int]:
    """A project with sources, a finished job, exceptions and a rule set; returns its ids."""
    owner = _user()
    other = _user(Role.analyst)
    project = Project(name=f"fuzzed {uuid.uuid4().hex[:6]}", description="")
    project.members.append(Membership(user_id=owner.id, role=ProjectRole.owner))
    project.members.append(Membership(user_id=other.id, role=ProjectRole.editor))
    db.session.add(project)
    db.session.commit()
    left = _source(app, project, LEFT, "left")
    right = _source(app, project, RIGHT, "right")
    ruleset = save_ruleset(session=db.session, project=project, name="rules", rules=RULES)
    job = create_job(
        session=db.session,
        project=project,
        left_source_id=left.id,
        right_source_id=right.id,
        ruleset_id=ruleset.id,
        enqueue=app.extensions["recon_enqueue"],
    )
    exception = db.session.query(ReconException).filter_by(job_id=job.id).first()
    assert exception is not None  # the rules leave unmatched and suggested records
    return {
        "pid": project.id,
        "sid": left.id,
        "jid": job.id,
        "eid": exception.id,
        "rid": ruleset.id,
        "user_id": other.id,
        "uid": other.id,
    }


@pytest.fixture(scope="module")
def world(fuzz_app: Flask) -> dict[str, int]:
    with fuzz_app.app_context():
        return _build_world(fuzz_app)


def test_no_request_gets_a_server_error(fuzz_app, world, operation):
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", fuzz_app)
    target = schema.find_operation_by_label(operation)
    assert target is not None, operation
    with fuzz_app.app_context():
        if db.session.get(Project, world["pid"]) is None:  # an earlier operation deleted it
            world.update(_build_world(fuzz_app))
        db.session.remove()

    @given(case=target.as_strategy())
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    def check(case: Any) -> None:
        for name in list(case.path_parameters or {}):
            if name in world:
                case.path_parameters[name] = world[name]
        with fuzz_app.app_context():
            raw, _ = issue_token(session=db.session, user=_user(), ttl=600)
            db.session.remove()
        response = case.call(headers={"Authorization": f"Bearer {raw}"})
        case.validate_response(response, checks=[not_a_server_error])

    check()
