"""The job page says where the work stands (people's decisions applied) and lets an owner
sign off a complete job; an incomplete one is refused with what is left, and changes
nothing."""

from __future__ import annotations

import pytest

from recon.extensions import db
from recon.jobs.models import Job
from tests.review.helpers import build_world
from tests.workspace.helpers import signed_in


@pytest.fixture
def world(app, factory, as_user):
    return build_world(app, factory, as_user)


def test_the_job_page_shows_the_current_state_and_an_owner_signs_off(world, factory):
    owner = signed_in(world.app, factory, world.owner.user)
    url = f"/projects/{world.pid}/jobs/{world.job.id}"
    html = owner.get(url).get_data(as_text=True)
    assert "Where the work stands" in html
    assert '<dd data-state="explained_rate">20.0%</dd>' in html  # the exact match, 2 of 10
    assert "8 record(s)</a>" in html and "Possible once every record is explained" in html
    refused = owner.post(f"{url}/sign-off", htmx=False)
    assert refused.status_code == 409 and "not complete" in refused.get_data(as_text=True)
    assert db.session.get(Job, world.job.id).signed_off_at is None
    # Everything explained: the suggestion accepted, the rest resolved with a reason.
    world.owner.post(world.url("/exceptions/bulk"), json={"action": "accept"})
    world.owner.post(
        world.url("/exceptions/bulk"),
        json={"action": "resolve", "reason_code": "timing_difference"},
    )
    ready = owner.get(url).get_data(as_text=True)
    assert '<dd data-state="explained_rate">100.0%</dd>' in ready
    assert "Every record is explained" in ready
    done = owner.post(f"{url}/sign-off", htmx=False).get_data(as_text=True)
    assert "Signed off. Its exceptions and matches are locked now." in done
    assert 'data-state="signed_off"' in done and "Sign off the job</button>" not in done
    db.session.expire_all()
    assert db.session.get(Job, world.job.id).signed_off_at is not None
    again = owner.post(f"{url}/sign-off", htmx=False)
    assert again.status_code == 409


def test_only_owners_see_and_use_the_sign_off(world, factory):
    editor = signed_in(world.app, factory, world.editor.user)
    url = f"/projects/{world.pid}/jobs/{world.job.id}"
    assert "Sign off the job" not in editor.get(url).get_data(as_text=True)
    assert editor.post(f"{url}/sign-off").status_code == 403
    assert db.session.get(Job, world.job.id).signed_off_at is None
