"""Fixtures: an app per database backend, a rollback per test, clients per role, factories.

Every DB test runs on SQLite and, when RECON_TEST_DATABASE_URL is set, on
PostgreSQL too (in a throwaway database created for the run). With
RECON_TEST_REQUIRE_SERVICES=1 a missing PostgreSQL or Redis fails the run.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher
from flask import Flask
from flask.testing import FlaskClient
from flask_migrate import upgrade
from flask_sqlalchemy.session import _app_ctx_id
from sqlalchemy.engine import make_url

from recon import create_app
from recon.auth.service import issue_token
from recon.extensions import db
from recon.projects.models import Membership, Project, ProjectRole
from recon.users.models import Role, User

REQUIRE_SERVICES = os.environ.get("RECON_TEST_REQUIRE_SERVICES") == "1"
PG_URL = os.environ.get("RECON_TEST_DATABASE_URL")
REDIS_URL = os.environ.get("RECON_TEST_REDIS_URL")
PASSWORD = "correct horse battery staple"


def missing_service(what: str) -> None:
    """Skip, or fail when the run requires every service."""
    if REQUIRE_SERVICES:
        pytest.fail(f"{what} is required (RECON_TEST_REQUIRE_SERVICES=1) but not available")
    pytest.skip(f"{what} not available")


@lru_cache(maxsize=1)
def password_hash() -> str:
    # One argon2id hash for every factory user, with the cheapest parameters: verifying the
    # production ones costs a third of a second on purpose, and the lockout tests log in
    # dozens of times. recon verifies whatever parameters a stored hash names.
    return PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1).hash(PASSWORD)


def app_config(tmp: Path, database_url: str, **overrides: Any) -> dict[str, Any]:
    config = {
        "TESTING": True,
        "RECON_DATABASE_URL": database_url,
        "RECON_DATA_DIR": str(tmp / "data"),
        "RECON_REDIS_URL": None,
        "RECON_ADMIN_PASSWORD": None,
        "RECON_LOGIN_RATE_LIMIT": "1000/minute",
        "RECON_METRICS_TOKEN": None,
        "RECON_JOB_RUNNER": "inline",
        "RATELIMIT_KEY_PREFIX": f"test-{uuid.uuid4().hex}",
        # Every test app's cache keys apart: they share the test Redis, not a database.
        "RECON_CACHE_NAMESPACE": f"test-{uuid.uuid4().hex[:12]}:",
    }
    config.update(overrides)
    return config


@contextmanager
def throwaway_postgres() -> Iterator[str]:
    """Create a fresh PostgreSQL database, yield its URL, drop it afterwards."""
    if not PG_URL:
        missing_service("PostgreSQL (RECON_TEST_DATABASE_URL)")
    base = make_url(PG_URL)
    name = f"recon_test_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    except sa.exc.OperationalError as exc:
        admin.dispose()
        missing_service(f"PostgreSQL at {base.host}:{base.port} ({exc.orig})")
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """A fresh PostgreSQL database for this run, dropped at the end."""
    with throwaway_postgres() as url:
        yield url


@pytest.fixture(scope="session", params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'recon.db'}"
    return request.getfixturevalue("postgres_database")


def migrate_schema(app: Flask) -> None:
    """Build the schema the way production does: through the migrations."""
    with app.app_context():
        upgrade()
        db.session.remove()


@pytest.fixture(scope="session")
def app(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    application = create_app(app_config(tmp_path_factory.mktemp("app"), database_url))
    migrate_schema(application)
    yield application
    with application.app_context():
        db.engine.dispose()


@pytest.fixture(autouse=True)
def _rollback(request: pytest.FixtureRequest) -> Iterator[None]:
    """Run every DB test inside a transaction that is rolled back afterwards.

    Service code commits freely: its commits release SAVEPOINTs of the outer
    transaction, which the test throws away.
    """
    if "app" not in request.fixturenames:
        yield
        return
    application: Flask = request.getfixturevalue("app")
    with application.app_context():
        connection = db.engine.connect()
        outer = connection.begin()
        original = db.session
        # A plain Session: Flask-SQLAlchemy's own ignores ``bind`` and picks the engine.
        factory = sa.orm.sessionmaker(bind=connection, join_transaction_mode="create_savepoint")
        db.session = sa.orm.scoped_session(factory, scopefunc=_app_ctx_id)
        try:
            yield
        finally:
            db.session.remove()
            db.session = original
            outer.rollback()
            connection.close()
    cache = application.extensions.get("recon_cache")
    if cache is not None:
        cache.clear_local()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@dataclass
class Factory:
    app: Flask

    def user(self, username: str | None = None, role: Role = Role.analyst, **kw: Any) -> User:
        user = User(
            username=username or f"user-{uuid.uuid4().hex[:8]}",
            role=role,
            password_hash=password_hash(),
            active=True,
            **kw,
        )
        db.session.add(user)
        db.session.commit()
        return user

    def project(
        self,
        name: str | None = None,
        members: dict[User, ProjectRole] | None = None,
        description: str = "",
    ) -> Project:
        project = Project(name=name or f"project-{uuid.uuid4().hex[:8]}", description=description)
        for user, role in (members or {}).items():
            project.members.append(Membership(user_id=user.id, role=role))
        db.session.add(project)
        db.session.commit()
        return project

    def source(
        self, project: Project, user: User, csv: str | None = None, name: str = "source"
    ) -> Any:
        """Upload a small CSV through the service, as the API would."""
        import io

        from recon.sources.service import Upload, create_source

        csv = csv or (
            f"Reference,Amount,Date\n{uuid.uuid4().hex[:8]},1.00,2024-01-01\nB,2.50,2024-01-02\n"
        )
        upload = Upload(
            stream=io.BytesIO(csv.encode()),
            filename=f"{name}.csv",
            name=name,
            mapping=None,
            options=None,
        )
        return create_source(
            session=db.session,
            storage=self.app.extensions["recon_storage"],
            project=project,
            upload=upload,
            max_bytes=2**20,
        )

    def job(self, project: Project, left: Any, right: Any, rules: dict | None = None) -> Any:
        """Save ``rules`` as a rule set and run a job with it (inline in tests)."""
        from recon.jobs.rulesets import save_ruleset
        from recon.jobs.service import create_job

        rules = rules or {"passes": [{"name": "exact", "match_on": ["key"]}]}
        ruleset = save_ruleset(
            session=db.session, project=project, name=f"rules-{uuid.uuid4().hex[:6]}", rules=rules
        )
        return create_job(
            session=db.session,
            project=project,
            left_source_id=left.id,
            right_source_id=right.id,
            ruleset_id=ruleset.id,
            enqueue=self.app.extensions["recon_enqueue"],
        )

    def token(self, user: User) -> str:
        raw, _ = issue_token(session=db.session, user=user, ttl=3600)
        return raw


@pytest.fixture
def factory(app: Flask) -> Iterator[Factory]:
    with app.app_context():
        yield Factory(app)


class AuthClient:
    """A test client that sends one user's bearer token on every request."""

    def __init__(self, client: FlaskClient, user: User, token: str) -> None:
        self.client, self.user, self.token = client, user, token

    def open(self, method: str, url: str, **kw: Any) -> Any:
        headers = {"Authorization": f"Bearer {self.token}", **kw.pop("headers", {})}
        return self.client.open(url, method=method, headers=headers, **kw)

    def get(self, url: str, **kw: Any) -> Any:
        return self.open("GET", url, **kw)

    def post(self, url: str, **kw: Any) -> Any:
        return self.open("POST", url, **kw)

    def patch(self, url: str, **kw: Any) -> Any:
        return self.open("PATCH", url, **kw)

    def delete(self, url: str, **kw: Any) -> Any:
        return self.open("DELETE", url, **kw)


@pytest.fixture
def as_user(client: FlaskClient, factory: Factory):  # noqa: ANN201 - returns a factory function
    """``as_user(role=Role.analyst)`` -> an AuthClient for a new user with that global role."""

    def make(role: Role = Role.analyst, **kw: Any) -> AuthClient:
        user = factory.user(role=role, **kw)
        return AuthClient(client, user, factory.token(user))

    return make


@pytest.fixture
def admin(as_user) -> AuthClient:  # noqa: ANN001
    return as_user(Role.admin)


@pytest.fixture
def analyst(as_user) -> AuthClient:  # noqa: ANN001
    return as_user(Role.analyst)


@pytest.fixture
def redis_url() -> str:
    """The test Redis (RECON_TEST_REDIS_URL), or skip/fail when it is not answering."""
    import redis

    url = REDIS_URL or ("redis://127.0.0.1:6379/0" if not REQUIRE_SERVICES else None)
    if url is None:
        missing_service("Redis (RECON_TEST_REDIS_URL)")
    try:
        redis.Redis.from_url(url, socket_timeout=0.5).ping()
    except redis.RedisError:
        missing_service(f"Redis at {url}")
    return url
