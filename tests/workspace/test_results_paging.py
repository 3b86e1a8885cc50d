"""The results pages walk a job with the API's keyset cursor: each Next link carries the
cursor of the last record shown, so the hundred-thousandth page costs what the first does."""

from __future__ import annotations

import html as html_lib
import re

import pytest

from tests.review.helpers import build_world
from tests.workspace.helpers import signed_in


@pytest.fixture
def world(app, factory, as_user):
    return build_world(app, factory, as_user)


@pytest.fixture
def page(world, factory):
    return signed_in(world.app, factory, world.viewer.user)


def shown(html: str) -> list[tuple[str, str]]:
    """The (side, row) of each record on the page, in order."""
    return re.findall(r"<tr[^>]*>\s*<td>(left|right)</td>\s*<td class=\"num\">(\d+)</td>", html)


def next_link(html: str) -> str | None:
    found = re.search(r'<a href="([^"]+)"[^>]*rel="next"', html)
    return html_lib.unescape(found.group(1)) if found else None


def test_next_follows_the_cursor_through_every_record_once(world, page):
    url = f"/projects/{world.pid}/jobs/{world.job.id}/results?per_page=4"
    seen, pages = [], 0
    while url:
        html = page.get(url).get_data(as_text=True)
        rows = shown(html)
        assert rows, html
        seen += rows
        pages += 1
        assert "10 in all" in html
        assert ("First page" in html) == (pages > 1)
        url = next_link(html)
        if url:
            assert "after=" in url and "per_page=4" in url
            assert not re.search(r"[?&]page=", url)
    assert pages == 3 and len(seen) == 10 and len(set(seen)) == 10
    assert seen == sorted(seen, key=lambda r: (r[0], int(r[1])))


def test_a_broken_cursor_is_a_clear_error(world, page):
    response = page.get(f"/projects/{world.pid}/jobs/{world.job.id}/results?after=nonsense")
    assert response.status_code == 422
    assert "after" in response.get_data(as_text=True)
