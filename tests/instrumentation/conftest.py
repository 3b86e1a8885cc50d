"""Helpers to read /api/metrics the way Prometheus does, and a minimal app of our own.

The recon app (``app`` fixture from tests/conftest.py) is shared by the whole
session, so tests compare scrapes before and after their own traffic. Tests
that need a process-fresh registry (two apps, pools, traces) build the small
Flask + Flask-SQLAlchemy app below.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from flask_sqlalchemy import SQLAlchemy
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Exposition:
    """A parsed text exposition, read the way a PromQL query would read it."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.families: dict[str, Metric] = {}
        for family in text_string_to_metric_families(text):
            assert family.name not in self.families, f"{family.name} exposed twice"
            self.families[family.name] = family

    def value(self, name: str, **labels: str) -> float:
        """Return the value of the sample ``name{labels}`` (0 when absent)."""
        for family in self.families.values():
            for s in family.samples:
                if s.name == name and s.labels == labels:
                    return float(s.value)
        return 0.0

    def label_keys(self, family: str) -> set[frozenset[str]]:
        """Return the distinct label-key sets of ``family``'s samples (``le`` aside)."""
        return {frozenset(k for k in s.labels if k != "le") for s in self.families[family].samples}

    def label_values(self, family: str, key: str) -> set[str]:
        return {s.labels[key] for s in self.families[family].samples if key in s.labels}


def scrape_text(client: FlaskClient, **headers: str) -> str:
    response = client.get("/api/metrics", headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_data(as_text=True)


@pytest.fixture
def scrape() -> Callable[..., Exposition]:
    """``scrape(client)`` -> the parsed /api/metrics of that client's app."""

    def do(client: FlaskClient, **headers: str) -> Exposition:
        return Exposition(scrape_text(client, **headers))

    return do


@pytest.fixture(scope="session")
def promtool() -> str:
    """Path of promtool; skip without it, fail if the run requires every service."""
    path = shutil.which("promtool")
    if path is None:
        if os.environ.get("RECON_TEST_REQUIRE_SERVICES") == "1":
            pytest.fail("promtool is required (RECON_TEST_REQUIRE_SERVICES=1) but not on PATH")
        pytest.skip("promtool not installed")
    return path


class Base(DeclarativeBase):
    pass


class Widget(Base):
    __tablename__ = "widgets"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]


def build_mini_app(
    database_url: str, *, create_schema: bool = True, **engine_options: Any
) -> tuple[Flask, SQLAlchemy]:
    """A two-route Flask app on its own SQLAlchemy, instrumented by init_app's caller."""
    db = SQLAlchemy(model_class=Base)
    app = Flask("mini")
    app.config.update(
        SQLALCHEMY_DATABASE_URI=database_url,
        SQLALCHEMY_ENGINE_OPTIONS=engine_options,
        RECON_METRICS_TOKEN=None,
    )
    db.init_app(app)

    @app.get("/widgets/<int:wid>")
    def get_widget(wid: int) -> Any:
        widget = db.session.get(Widget, wid)
        return ({"id": widget.id, "name": widget.name} if widget else {"error": "nope"}), (
            200 if widget else 404
        )

    @app.post("/widgets")
    def add_widget() -> Any:
        widget = Widget(name="w")
        db.session.add(widget)
        db.session.commit()
        return {"id": widget.id}, 201

    if create_schema:
        with app.app_context():
            Base.metadata.create_all(db.engine)
    return app, db


@pytest.fixture
def mini_app_factory(tmp_path: Path) -> Iterator[Callable[..., tuple[Flask, SQLAlchemy]]]:
    built: list[tuple[Flask, SQLAlchemy]] = []

    def make(
        database_url: str | None = None, *, create_schema: bool = True, **engine_options: Any
    ) -> tuple[Flask, SQLAlchemy]:
        url = database_url or f"sqlite:///{tmp_path / f'mini{len(built)}.db'}"
        pair = build_mini_app(url, create_schema=create_schema, **engine_options)
        built.append(pair)
        return pair

    yield make
    for app, db in built:
        with app.app_context():
            db.engine.dispose()


@pytest.fixture(scope="module")
def module_redis_url() -> str:
    """tests/conftest.py's ``redis_url`` for a module-scoped fixture (a worker per module)."""
    import redis

    from tests.conftest import REDIS_URL, REQUIRE_SERVICES, missing_service

    url = REDIS_URL or ("redis://127.0.0.1:6379/0" if not REQUIRE_SERVICES else None)
    if url is None:
        missing_service("Redis (RECON_TEST_REDIS_URL)")
    try:
        redis.Redis.from_url(url, socket_timeout=0.5).ping()
    except redis.RedisError:
        missing_service(f"Redis at {url}")
    return str(url)
