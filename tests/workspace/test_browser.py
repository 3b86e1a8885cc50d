"""Browser checks besides the journey: hostile names render as text, the API docs work
offline, a phone can read the pages, the keyboard reaches every control."""

from __future__ import annotations

import csv
import io

import pytest
import requests

from tests.workspace.conftest import Browsing

# One server and one browser for every browser test: the same xdist worker runs them all.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("browser")]
XSS = "<img src=x onerror=alert(1)>"
ATTR = '" autofocus onfocus="alert(2)'


def api_token(b: Browsing) -> str:
    response = requests.post(
        b.url("/api/auth/login"),
        json={"username": "admin", "password": b.server.password},
        timeout=10,
    )
    return response.json()["access_token"]


def test_names_from_people_and_files_render_as_text(browsing: Browsing) -> None:
    b, page = browsing, browsing.page
    token = api_token(b)
    auth = {"Authorization": f"Bearer {token}"}
    made = requests.post(
        b.url("/api/projects"),
        json={"name": XSS + " p", "description": ATTR},
        headers=auth,
        timeout=10,
    ).json()
    out = io.StringIO()
    csv.writer(out).writerows(
        [("Reference", "Amount", "Date", "Description"), (XSS, "1.00", "2024-01-01", ATTR)]
    )
    requests.post(
        b.url(f"/api/projects/{made['id']}/sources"),
        data={"name": XSS},
        files={"file": ("x.csv", out.getvalue())},
        headers=auth,
        timeout=10,
    ).raise_for_status()
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    b.sign_in()
    page.fill("#q", "<img")
    page.wait_for_selector(f"#project-list a:has-text('{XSS}')")
    page.click(f"#project-list a:has-text('{XSS}')")
    page.wait_for_selector("h1")
    assert page.inner_text("h1") == XSS + " p"
    page.click("section[aria-labelledby=sources-title] table a")  # the source, named like an image
    page.wait_for_url("**/sources/**")
    page.wait_for_selector("h1")
    assert page.inner_text("h1") == XSS
    assert ATTR in page.inner_text("#rows")
    b.shot("20-hostile-names")
    assert page.locator("img").count() == 0  # no element was made from the text
    assert dialogs == []


def test_api_docs_render_offline_from_vendored_swagger_ui(browsing: Browsing) -> None:
    page = browsing.page
    page.goto(browsing.url("/api/docs"))
    page.wait_for_selector(".swagger-ui .info .title")
    assert "recon" in page.inner_text(".swagger-ui .info .title")
    page.wait_for_selector("#operations-tag-auth")
    browsing.shot("21-api-docs", full_page=False)


def test_a_phone_can_read_the_pages(browser, server) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    page = context.new_page()
    b = Browsing(page, None, server)  # type: ignore[arg-type]
    try:
        b.sign_in()
        for path, name in (
            ("/", "30-phone-projects"),
            (f"/projects/{server.demo_project}/jobs/{server.demo_job}", "31-phone-job"),
            (f"/projects/{server.demo_project}/exceptions", "32-phone-exceptions"),
        ):
            page.goto(b.url(path))
            # Nothing but tables scrolls sideways: the page itself fits the screen.
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= 390, (path, width)
            b.shot(name)
    finally:
        context.close()


def test_the_keyboard_reaches_the_queue_and_focus_is_visible(browsing: Browsing) -> None:
    b, page = browsing, browsing.page
    b.sign_in()
    page.goto(b.url(f"/projects/{b.server.demo_project}/exceptions"))
    page.keyboard.press("Tab")  # the skip link comes first
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline == "solid"
    page.keyboard.press("/")
    assert page.evaluate("document.activeElement.id") == "x-q"
    page.keyboard.press("Escape")
    first = page.get_attribute("#detail article", "data-exception")
    page.keyboard.press("j")
    page.wait_for_selector(f"#detail article:not([data-exception='{first}'])")
    page.keyboard.press("m")  # assign to me: the next item is selected, the queue stays
    page.wait_for_selector("#workbench tr[data-item] td:has-text('admin')")


def test_a_running_job_can_be_cancelled_from_its_page(browsing: Browsing) -> None:
    b, page = browsing, browsing.page
    b.sign_in()
    page.goto(b.url(f"/projects/{b.server.demo_project}"))
    page.click("form.run button:has-text('Run')")
    page.wait_for_selector("#progress button:has-text('Cancel the job')")
    page.click("#progress button:has-text('Cancel the job')")  # confirmed by the dialog handler
    page.wait_for_selector(".problem:has-text('The job cancelled.')", timeout=30_000)
    assert "cancelled" in page.inner_text("#progress")


def test_the_exception_actions_work_without_javascript(browser, server) -> None:
    # Before htmx has wired a freshly swapped detail, or with no script at all, an action's
    # form is a plain POST (it was a GET of the page with the CSRF token in its URL).
    viewport = {"width": 1280, "height": 800}
    context = browser.new_context(java_script_enabled=False, viewport=viewport)
    try:
        page = context.new_page()
        page.goto(server.base + "/login")
        page.fill("#username", "admin")
        page.fill("#password", server.password)
        page.click("button[type=submit]")
        page.wait_for_url(lambda url: "/login" not in url)
        page.goto(server.base + f"/projects/{server.demo_project}/exceptions?unresolved=true")
        exception = page.get_attribute("#detail article", "data-exception")
        page.click("#detail button:has-text('Assign to me')")
        page.wait_for_load_state()
        assert "csrf_token" not in page.url
        login = {"username": "admin", "password": server.password}
        token = requests.post(f"{server.base}/api/auth/login", json=login, timeout=10).json()
        me = requests.get(
            f"{server.base}/api/auth/me",
            headers={"Authorization": f"Bearer {token['access_token']}"},
            timeout=10,
        ).json()
        assigned = requests.get(
            f"{server.base}/api/projects/{server.demo_project}/exceptions/{exception}",
            headers={"Authorization": f"Bearer {token['access_token']}"},
            timeout=10,
        ).json()
        assert assigned["assignee_id"] == me["id"]
    finally:
        context.close()
