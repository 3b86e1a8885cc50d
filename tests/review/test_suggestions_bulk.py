"""Accepting and rejecting suggested matches, and bulk actions on a filter."""

from __future__ import annotations

from recon.extensions import db
from recon.review.models import ReconException
from recon.users.models import Role


def get(world, side, row):
    return world.viewer.get(world.url(f"/exceptions/{world.eid(side, row)}")).get_json()


def test_accept_resolves_both_sides_of_the_suggestion(world):
    response = world.editor.post(world.url(f"/exceptions/{world.eid('left', 4)}/accept"))
    assert response.status_code == 200, response.get_json()
    items = response.get_json()["items"]
    assert {(e["side"], e["row"]) for e in items} == {("left", 4), ("right", 3)}
    for side, row in (("left", 4), ("right", 3)):
        body = get(world, side, row)
        assert (body["status"], body["reason_code"]) == ("resolved", "matched_by_suggestion")
    again = world.editor.post(world.url(f"/exceptions/{world.eid('right', 3)}/reject"))
    assert again.status_code == 409 and "already resolved" in again.get_json()["detail"]
    event = world.viewer.get(world.url("/audit?action=exception.accept")).get_json()["items"][0]
    assert sorted(event["after"]["exception_ids"]) == sorted(
        [world.eid("left", 4), world.eid("right", 3)]
    )


def test_reject_drops_the_suggestion(world):
    world.editor.patch(
        world.url(f"/exceptions/{world.eid('right', 3)}"),
        json={"assignee_id": world.editor.user.id},
    )
    response = world.editor.post(world.url(f"/exceptions/{world.eid('right', 3)}/reject"))
    assert response.status_code == 200, response.get_json()
    left, right = get(world, "left", 4), get(world, "right", 3)
    assert (left["kind"], left["status"], left["match_id"], left["counterpart"]) == (
        "unmatched",
        "open",
        None,
        None,
    )
    assert (right["kind"], right["status"], right["assignee_id"]) == (
        "unmatched",
        "assigned",
        world.editor.user.id,
    )
    assert world.viewer.get(world.url("/exceptions?kind=suggested")).get_json()["total"] == 0


def test_accept_or_reject_of_something_else_is_409(world):
    for action in ("accept", "reject"):
        response = world.editor.post(world.url(f"/exceptions/{world.eid('left', 2)}/{action}"))
        assert response.status_code == 409
        assert response.get_json()["code"] == "not_a_suggestion"
        assert "break, not a suggestion" in response.get_json()["detail"]
    viewer = world.viewer.post(world.url(f"/exceptions/{world.eid('left', 4)}/accept"))
    assert viewer.status_code == 403


def test_bulk_assign_resolve_reopen_on_a_filter(world):
    url = world.url("/exceptions/bulk")
    editor_id = world.editor.user.id
    assigned = world.editor.post(
        url,
        json={
            "filter": {"side": "right", "kind": "unmatched"},
            "action": "assign",
            "assignee_id": editor_id,
        },
    )
    assert assigned.status_code == 200, assigned.get_json()
    assert assigned.get_json() == {"updated": 2, "skipped": 0}
    mine = world.viewer.get(world.url(f"/exceptions?assignee={editor_id}")).get_json()
    assert {(e["side"], e["row"], e["status"]) for e in mine["items"]} == {
        ("right", 4, "assigned"),
        ("right", 5, "assigned"),
    }

    assert (
        world.editor.post(
            url, json={"filter": {"kind": "unmatched"}, "action": "resolve"}
        ).status_code
        == 422
    )
    resolved = world.editor.post(
        url,
        json={
            "filter": {"kind": "unmatched"},
            "action": "resolve",
            "reason_code": "timing_difference",
            "note": "month-end cut-off",
        },
    )
    assert resolved.get_json() == {"updated": 4, "skipped": 0}
    rows = db.session.query(ReconException).filter_by(project_id=world.pid, kind="unmatched")
    assert {(e.status.value, e.reason_code, e.note) for e in rows} == {
        ("resolved", "timing_difference", "month-end cut-off")
    }
    # A second resolve on the same filter finds nothing it may change.
    assert world.editor.post(
        url,
        json={
            "filter": {"kind": "unmatched"},
            "action": "resolve",
            "reason_code": "other",
        },
    ).get_json() == {"updated": 0, "skipped": 4}

    closed = world.editor.post(url, json={"filter": {}, "action": "close"})
    assert closed.get_json() == {"updated": 4, "skipped": 4}  # breaks and suggestions
    reopened = world.editor.post(url, json={"filter": {"status": "resolved"}, "action": "reopen"})
    assert reopened.get_json() == {"updated": 4, "skipped": 0}
    counts = world.viewer.get(world.url("/exceptions?status=reopened")).get_json()["total"]
    assert counts == 4

    events = world.viewer.get(world.url("/audit?object_type=exception")).get_json()["items"]
    bulk = [e for e in events if e["action"].startswith("exception.bulk_")]
    assert [e["action"] for e in bulk] == [
        "exception.bulk_reopen",
        "exception.bulk_close",
        "exception.bulk_resolve",
        "exception.bulk_resolve",
        "exception.bulk_assign",
    ]
    assert bulk[-1]["after"]["count"] == 2
    assert sorted(bulk[-1]["after"]["exception_ids"]) == sorted(
        [world.eid("right", 4), world.eid("right", 5)]
    )
    assert bulk[-1]["after"]["filter"] == {"side": "right", "kind": "unmatched"}


def test_bulk_refuses_bad_requests(world, as_user):
    url = world.url("/exceptions/bulk")
    outsider = as_user(Role.analyst)
    response = world.editor.post(
        url, json={"filter": {}, "action": "assign", "assignee_id": outsider.user.id}
    )
    assert response.status_code == 422 and "not a member" in response.get_json()["detail"]
    assert world.editor.post(url, json={"filter": {}, "action": "explode"}).status_code == 422
    assert (
        world.editor.post(url, json={"filter": {"kind": "nope"}, "action": "close"}).status_code
        == 422
    )
    assert world.viewer.post(url, json={"filter": {}, "action": "close"}).status_code == 403
    assert world.viewer.get(world.url("/exceptions?status=open")).get_json()["total"] == 8


def test_a_bulk_action_filtered_by_amount_is_audited_with_the_amounts_as_text(world):
    response = world.editor.post(
        world.url("/exceptions/bulk"),
        json={
            "filter": {"min_amount": "40.5", "max_amount": "100"},
            "action": "assign",
            "assignee_id": world.editor.user.id,
        },
    )
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["updated"] == 2  # 45.50 and 75.50
    [event] = world.viewer.get(world.url("/audit?per_page=1")).get_json()["items"]
    assert event["action"] == "exception.bulk_assign"
    assert event["after"]["filter"] == {"min_amount": "40.5", "max_amount": "100"}
