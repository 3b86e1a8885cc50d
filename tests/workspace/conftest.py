"""Browser tests: one gunicorn serving the demo, one Debian chromium driven by Playwright.

Every page a test opens is watched: a console error, an uncaught script error or a
request to another host fails the test (requests to other hosts are aborted by
route interception, so they can't even leave the machine). Screenshots go to
var/screenshots/ for people to look at.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.conftest import missing_service
from tests.servers import BIN, ROOT, free_port, server_env

PASSWORD = "workspace journey password"
CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SHOTS = ROOT / "var" / "screenshots"
AXE = Path(__file__).parent / "vendor" / "axe-core-4.14.1" / "axe.min.js"


@dataclass
class Server:
    base: str
    password: str
    demo_project: int
    demo_job: int


def _load_demo(env: dict[str, str]) -> tuple[int, int]:
    """Migrate, create the admin and load the demo in this process (three app start-ups in
    subprocesses cost half a minute on a busy 2-core machine)."""
    from flask_migrate import upgrade

    from recon import create_app
    from recon.demo import load_demo
    from recon.extensions import db
    from recon.jobs.tasks import InlineRunner
    from recon.users.models import Role
    from recon.users.service import create_user

    app = create_app(
        {
            "RECON_DATABASE_URL": env["RECON_DATABASE_URL"],
            "RECON_DATA_DIR": env["RECON_DATA_DIR"],
            "RECON_REDIS_URL": None,
            "RECON_ADMIN_PASSWORD": None,
            "RECON_JOB_RUNNER": "inline",
            "RECON_JOB_PAUSE_AFTER_CLAIM": 0.0,
        }
    )
    with app.app_context():
        upgrade()
        admin = create_user(
            session=db.session, username="admin", password=PASSWORD, role=Role.admin
        )
        job = load_demo(
            session=db.session,
            storage=app.extensions["recon_storage"],
            owner_id=admin.id,
            enqueue=InlineRunner(app),
        )
        assert job is not None
        ids = (job.project_id, job.id)
        db.session.remove()
        db.engine.dispose()
    return ids


@pytest.fixture(scope="session")
def _server_process(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[str, Any, Path, tuple[int, int]]]:
    """Start gunicorn on the demo database; readiness is awaited by ``server``, so the
    browser starts meanwhile."""
    tmp = tmp_path_factory.mktemp("workspace-server")
    port = free_port()
    # Each job waits a moment after its claim, so a person (and the journey) sees it run and
    # the cancel test reaches its button in time on a loaded machine (3 s was not always).
    env = server_env(
        tmp,
        port,
        RECON_JOB_PAUSE_AFTER_CLAIM="6",
        RECON_LOGIN_RATE_LIMIT="1000/minute",
        RECON_LOG_LEVEL="WARNING",
    )
    demo = _load_demo(env)
    log = (tmp / "gunicorn.log").open("wb")
    proc = subprocess.Popen(
        [str(BIN / "gunicorn"), "-c", "ops/gunicorn.conf.py", "wsgi:app"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        yield f"http://127.0.0.1:{port}", proc, tmp / "gunicorn.log", demo
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@pytest.fixture(scope="session")
def server(_server_process: tuple[str, Any, Path, tuple[int, int]], browser: Any) -> Server:
    base, proc, log, (project, job) = _server_process
    deadline = time.monotonic() + 60
    while True:
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"gunicorn did not start: {log.read_text()}")
        try:
            with urllib.request.urlopen(f"{base}/api/health", timeout=2):  # noqa: S310 - local
                break
        except OSError:
            time.sleep(0.1)
    return Server(base, PASSWORD, project, job)


@pytest.fixture(scope="session")
def browser(_server_process: Any) -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        missing_service(f"chromium at {CHROMIUM}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="session", autouse=True)
def _screenshots_dir() -> None:
    shutil.rmtree(SHOTS, ignore_errors=True)
    SHOTS.mkdir(parents=True, exist_ok=True)


@dataclass
class Watch:
    """What a page did that a user would see as broken."""

    host: str
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    foreign: list[str] = field(default_factory=list)
    # Answers the test provoked on purpose (a rejected upload is a 422): the browser logs
    # "Failed to load resource" for them, which is not a fault of the page.
    expected_statuses: set[int] = field(default_factory=set)

    def check(self) -> None:
        errors = [
            e
            for e in self.console_errors
            if not any(f"status of {s}" in e for s in self.expected_statuses)
        ]
        assert not self.foreign, f"requests to other hosts: {self.foreign}"
        assert not self.page_errors, f"script errors: {self.page_errors}"
        assert not errors, f"console errors: {errors}"


@dataclass
class Browsing:
    page: Any
    watch: Watch
    server: Server

    def url(self, path: str) -> str:
        return self.server.base + path

    def follow(self, selector: str) -> None:
        """Click a link and wait for the new page's load event: htmx wires the page's forms
        on load, and what is typed or picked before that sends nothing."""
        with self.page.expect_navigation():
            self.page.click(selector)

    def shot(self, name: str, full_page: bool = True) -> Path:
        path = SHOTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=full_page)
        return path

    def axe(self) -> list[dict[str, Any]]:
        """Return axe-core's serious and critical violations on the page as it is now."""
        if not self.page.evaluate("typeof window.axe !== 'undefined'"):
            # Evaluated through the DevTools protocol: the page's CSP does not apply to it.
            self.page.evaluate(AXE.read_text(encoding="utf-8"))
        result = self.page.evaluate(
            "axe.run(document, {resultTypes: ['violations']}).then(r => r.violations.map("
            "v => ({id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 3).map("
            "n => n.target.join(' '))})))"
        )
        return [v for v in result if v["impact"] in ("serious", "critical")]

    def sign_in(self, username: str = "admin", password: str | None = None) -> None:
        self.page.goto(self.url("/login"))
        self.page.fill("#username", username)
        self.page.fill("#password", password or self.server.password)
        self.page.click("button[type=submit]")
        self.page.wait_for_url(lambda url: "/login" not in url)


def _watch(context: Any, page: Any, host: str) -> Watch:
    watch = Watch(host=host)

    def route(route: Any) -> None:
        if urlsplit(route.request.url).netloc != host:
            watch.foreign.append(route.request.url)
            route.abort()
        else:
            route.continue_()

    context.route("**/*", route)
    page.on(
        "console",
        lambda m: (
            m.type == "error"
            and watch.console_errors.append(f"{m.text} ({m.location.get('url')}, on {page.url})")
        ),
    )
    page.on("pageerror", lambda e: watch.page_errors.append(str(e)))
    return watch


@pytest.fixture
def browsing(browser: Any, server: Server, request: pytest.FixtureRequest) -> Iterator[Browsing]:
    """A fresh browser context (no cookies) at 1280x800, watched."""
    context = browser.new_context(viewport={"width": 1280, "height": 800}, accept_downloads=True)
    context.set_default_timeout(15_000)
    page = context.new_page()
    page.on("dialog", lambda d: d.accept())  # hx-confirm asks before cancelling a job
    watch = _watch(context, page, urlsplit(server.base).netloc)
    yield Browsing(page, watch, server)
    page.screenshot(path=str(SHOTS / f"last-{request.node.name}.png"), full_page=True)
    try:
        watch.check()
    finally:
        context.close()


def wait_until(predicate: Any, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.1)


__all__ = ["Browsing", "Server", "wait_until"]
