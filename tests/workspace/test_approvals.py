"""Approvals in the workspace: the write-offs waiting for me, approved or rejected from the
page; the maker's own wait for someone else and are refused to them."""

from __future__ import annotations

import pytest

from recon.extensions import db
from recon.review.models import Approval, ReconException
from tests.review.helpers import build_world
from tests.workspace.helpers import signed_in


@pytest.fixture
def world(app, factory, as_user):
    world = build_world(app, factory, as_user)
    world.owner.patch(world.url("/settings"), json={"require_approval": "always"})
    return world


def _write_off(world, page):
    """The editor matches left 3 with right 4 (30.00 apart) and writes the difference off."""
    made = page.post(
        f"/projects/{world.pid}/jobs/{world.job.id}/match",
        data={"left_rows": ["3"], "right_rows": ["4"], "write_off_reason": "rounding"},
    )
    assert made.status_code == 200
    return db.session.query(Approval).filter_by(project_id=world.pid).one()


def test_the_checker_sees_the_write_off_waiting_and_approves_it(world, factory):
    editor = signed_in(world.app, factory, world.editor.user)
    approval = _write_off(world, editor)
    owner = signed_in(world.app, factory, world.owner.user)
    html = owner.get(f"/projects/{world.pid}/approvals").get_data(as_text=True)
    assert "1 waiting for you." in html
    assert f'data-approval="{approval.id}"' in html and "30.00 EUR" in html
    assert "<td data-reason>rounding</td>" in html and "Approve</button>" in html
    assert "matched_manually" not in html
    done = owner.post(
        f"/projects/{world.pid}/approvals/{approval.id}/approve", data={"note": "checked"}
    ).get_data(as_text=True)
    assert f"Approval {approval.id} approved: 30.00 EUR written off." in done
    assert "Nothing waiting." in done
    db.session.expire_all()
    assert db.session.get(Approval, approval.id).status.value == "approved"
    assert db.session.get(ReconException, world.eid("left", 3)).status.value == "resolved"
    decided = owner.get(f"/projects/{world.pid}/approvals?status=approved").get_data(as_text=True)
    assert "approved by" in decided and "checked" in decided


def test_the_maker_sees_theirs_waiting_and_cannot_decide_it(world, factory):
    editor = signed_in(world.app, factory, world.editor.user)
    approval = _write_off(world, editor)
    html = editor.get(f"/projects/{world.pid}/approvals").get_data(as_text=True)
    assert "0 waiting for you · 1 of yours waiting for someone else." in html
    assert "waiting for another editor or owner" in html and "Approve</button>" not in html
    refused = editor.post(f"/projects/{world.pid}/approvals/{approval.id}/approve")
    assert refused.status_code == 403 and 'data-code="own_approval"' in refused.get_data(
        as_text=True
    )
    db.session.expire_all()
    assert db.session.get(Approval, approval.id).status.value == "pending"


def test_a_rejection_returns_the_records_and_bad_input_changes_nothing(world, factory):
    editor = signed_in(world.app, factory, world.editor.user)
    approval = _write_off(world, editor)
    owner = signed_in(world.app, factory, world.owner.user)
    bad_status = owner.get(f"/projects/{world.pid}/approvals?status=maybe")
    assert bad_status.status_code == 422
    too_long = owner.post(
        f"/projects/{world.pid}/approvals/{approval.id}/reject", data={"note": "x" * 10_001}
    )
    assert too_long.status_code == 422
    missing = owner.post(f"/projects/{world.pid}/approvals/999999/reject")
    assert missing.status_code == 404
    db.session.expire_all()
    assert db.session.get(Approval, approval.id).status.value == "pending"
    done = owner.post(
        f"/projects/{world.pid}/approvals/{approval.id}/reject", data={"note": "no"}
    ).get_data(as_text=True)
    assert f"Approval {approval.id} rejected: 30.00 EUR back to the exceptions." in done
    db.session.expire_all()
    assert db.session.get(ReconException, world.eid("left", 3)).status.value == "open"
    again = owner.post(f"/projects/{world.pid}/approvals/{approval.id}/approve")
    assert again.status_code == 409


def test_viewers_see_approvals_without_the_buttons(world, factory):
    editor = signed_in(world.app, factory, world.editor.user)
    approval = _write_off(world, editor)
    viewer = signed_in(world.app, factory, world.viewer.user)
    html = viewer.get(f"/projects/{world.pid}/approvals").get_data(as_text=True)
    assert f'data-approval="{approval.id}"' in html and "Approve</button>" not in html
    refused = viewer.post(f"/projects/{world.pid}/approvals/{approval.id}/approve")
    assert refused.status_code == 403
