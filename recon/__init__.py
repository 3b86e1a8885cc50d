"""recon: reconcile two sets of records under rules you control, then work the exceptions.

``create_app`` is the only entry point; importing the package runs nothing.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from flask import Flask, has_request_context, request
from sqlalchemy import event, inspect
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.middleware.proxy_fix import ProxyFix

from recon import config as settings
from recon import logs, web
from recon.db_decimal import register_sqlite
from recon.db_types import reading
from recon.errors import Conflict
from recon.extensions import api, db, migrate
from recon.problems import register_error_handlers

log = logging.getLogger("recon")


def migrations_dir() -> Path:
    """The Alembic folder beside the package in a checkout, else ./migrations (the image)."""
    beside = Path(__file__).resolve().parent.parent / "migrations"
    return beside if beside.is_dir() else Path.cwd() / "migrations"


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build the app; ``config`` overrides settings (tests), everything else comes from RECON_*."""
    # The app's own template folder is searched first: it overrides flask-smorest's Swagger
    # UI page with one that loads the vendored bundle and no inline script.
    app = Flask(__name__, static_folder=None, template_folder="workspace/templates")
    configure(app, config)
    if app.config["RECON_PROXY_HOPS"]:
        hops = app.config["RECON_PROXY_HOPS"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)  # type: ignore[method-assign]
    logs.configure(app.config["RECON_LOG_LEVEL"])
    register_extensions(app)
    register_blueprints(app)
    register_error_handlers(app)
    register_request_hooks(app)
    register_observability(app)
    register_commands(app)
    bootstrap_admin(app)
    return app


def configure(app: Flask, overrides: dict[str, Any] | None) -> None:
    values = settings.load(overrides=overrides)
    app.config.update(values)
    url = values["RECON_DATABASE_URL"]
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    Path(values["RECON_DATA_DIR"]).mkdir(parents=True, exist_ok=True)
    redis_url = values["RECON_REDIS_URL"]
    app.config.update(
        SQLALCHEMY_DATABASE_URI=url,
        SQLALCHEMY_ENGINE_OPTIONS=engine_options(url, values),
        MAX_CONTENT_LENGTH=values["RECON_MAX_UPLOAD_MB"] * 1024 * 1024,
        # Errors must reach our handlers and become problem+json, in tests too.
        PROPAGATE_EXCEPTIONS=False,
        DEBUG=False,
        JSON_SORT_KEYS=False,
        API_TITLE="recon",
        API_VERSION="1.0",
        OPENAPI_VERSION="3.1.0",
        OPENAPI_URL_PREFIX="/api",
        OPENAPI_JSON_PATH="openapi.json",
        OPENAPI_SWAGGER_UI_PATH="docs",
        OPENAPI_SWAGGER_UI_URL="/static/vendor/swagger-ui-5.35.0/",  # vendored, served by us
        API_SPEC_OPTIONS={
            "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
            "security": [{"bearer": []}],
        },
        RATELIMIT_STORAGE_URI=redis_url or "memory://",
        RATELIMIT_HEADERS_ENABLED=True,
        RATELIMIT_IN_MEMORY_FALLBACK_ENABLED=True,
        RATELIMIT_SWALLOW_ERRORS=True,
        RATELIMIT_KEY_PREFIX=values.get("RATELIMIT_KEY_PREFIX", "recon"),
    )
    app.testing = bool(values.get("TESTING", False))


def engine_options(url: str, values: dict[str, Any]) -> dict[str, Any]:
    if url.startswith("sqlite"):
        return {"connect_args": {"timeout": values["RECON_DB_TIMEOUT"] * 5}}
    return {
        "pool_size": values["RECON_DB_POOL_SIZE"],
        "max_overflow": values["RECON_DB_POOL_SIZE"],
        "pool_timeout": values["RECON_DB_TIMEOUT"],
        "pool_pre_ping": True,
        "pool_recycle": 1800,
        "connect_args": {"connect_timeout": values["RECON_DB_TIMEOUT"]},
    }


# Requests that only read: their SQLite transactions take no write lock.
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def _sqlite_pragmas(engine: Engine) -> None:
    """SQLite: enforce foreign keys, let readers and a writer share the file, add the exact
    decimal functions, and let SQLAlchemy own transactions (pysqlite's own handling breaks
    SAVEPOINTs)."""

    @event.listens_for(engine, "connect")
    def on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=15000")
        cursor.close()
        register_sqlite(dbapi_conn)

    @event.listens_for(engine, "begin")
    def on_begin(conn: Any) -> None:
        conn.exec_driver_sql(sqlite_begin())


def sqlite_begin() -> str:
    """The BEGIN for a new SQLite transaction: deferred for a request that only reads (or a
    block in ``reading_only``), so it reads its WAL snapshot while a job publishes;
    IMMEDIATE for everything else.

    IMMEDIATE takes the write lock up front (waiting up to busy_timeout): a deferred
    transaction that reads and then writes fails at once if another connection wrote in
    between, which is what writers (POST/PATCH/DELETE, jobs, the CLI) must not risk.
    """
    if reading() or (has_request_context() and request.method in READ_METHODS):
        return "BEGIN"
    return "BEGIN IMMEDIATE"


def register_extensions(app: Flask) -> None:
    import recon.models  # noqa: F401  (the whole schema, before anything reads the metadata)
    import recon.review.tallies  # noqa: F401  (keeps the exceptions' tallies on every flush)

    db.init_app(app)
    with app.app_context():
        if db.engine.dialect.name == "sqlite":
            _sqlite_pragmas(db.engine)
    migrate.init_app(app, db, directory=str(migrations_dir()))
    api.init_app(app)
    from recon import cache
    from recon.storage import Storage

    cache.init_app(app)
    app.extensions["recon_storage"] = Storage(app.config["RECON_DATA_DIR"])


def register_blueprints(app: Flask) -> None:
    from recon import limits
    from recon.analytics.views import blp as analytics
    from recon.audit.views import blp as audit
    from recon.auth.views import blp as auth
    from recon.health.views import blp as health
    from recon.jobs.views import blp as jobs
    from recon.projects.views import blp as projects
    from recon.review.views import blp as review
    from recon.sources.profile_views import blp as profiles
    from recon.sources.views import blp as sources
    from recon.users.views import blp as users

    limits.install_converters(app)
    blueprints = (health, auth, users, projects, sources, profiles, jobs, review, analytics, audit)
    for blueprint in blueprints:
        api.register_blueprint(blueprint)
    from recon import ratelimit, workspace

    workspace.init_app(app)
    from recon.jobs import tasks
    from recon.review.publish import publish_exceptions

    ratelimit.init_app(app)
    tasks.init_app(app)
    tasks.register_publish(app, publish_exceptions)


def register_request_hooks(app: Flask) -> None:
    from recon import limits
    from recon.auth import guard

    web.init_app(app)
    guard.init_app(app)
    limits.init_app(app)


def register_observability(app: Flask) -> None:
    import instrumentation
    from recon.jobs.backlog import backlog_reader
    from recon.problems import metrics_unauthorized

    instrumentation.init_app(app, unauthorized=metrics_unauthorized, backlog=backlog_reader(app))


def register_commands(app: Flask) -> None:
    from recon.cli import register

    register(app)


def bootstrap_admin(app: Flask) -> None:
    """Create the first admin when RECON_ADMIN_PASSWORD is set and there are no users yet.

    Does nothing before the migrations have created the users table.
    """
    password = app.config["RECON_ADMIN_PASSWORD"]
    if not password:
        return
    from recon.users.models import Role, User
    from recon.users.service import create_user

    name = app.config["RECON_ADMIN_USERNAME"]
    with app.app_context():
        try:
            if inspect(db.engine).has_table("users") and not db.session.query(User.id).first():
                create_user(session=db.session, username=name, password=password, role=Role.admin)
                log.info("created admin user %r from RECON_ADMIN_PASSWORD", name)
        except Conflict:  # another process created it first
            pass
        except SQLAlchemyError as exc:  # the DB may come up later; readiness reports it
            log.warning("could not check for an admin user: %s", type(exc).__name__)
        finally:
            db.session.remove()
