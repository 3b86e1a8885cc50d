"""The exception workflow through the API: list, filter, read, assign, resolve, close, reopen,
comment; invalid transitions are 409, every change is in the audit log."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update

from recon.db_types import utcnow
from recon.extensions import db
from recon.review.models import ReconException
from recon.users.models import Role


def listing(world, query="", client=None):
    response = (client or world.viewer).get(world.url(f"/exceptions?per_page=100&{query}"))
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def keys(page):
    return [(e["side"], e["row"]) for e in page["items"]]


def age(world, side, row, days):
    world.change(
        update(ReconException)
        .where(ReconException.id == world.eid(side, row))
        .values(opened_at=utcnow() - timedelta(days=days, hours=1))
    )
    db.session.commit()


def test_list_filters_and_pages_oldest_first(world):
    everything = listing(world)
    assert everything["total"] == 8 and everything["per_page"] == 100
    age(world, "right", 5, 40)
    age(world, "left", 3, 10)
    age(world, "right", 4, 3)
    assert keys(listing(world))[:3] == [("right", 5), ("left", 3), ("right", 4)]
    assert keys(listing(world, "min_age_days=8")) == [("right", 5), ("left", 3)]
    assert keys(listing(world, "min_age_days=2&max_age_days=7")) == [("right", 4)]
    assert listing(world, "max_age_days=1")["total"] == 5
    assert set(keys(listing(world, "kind=break"))) == {("left", 2), ("right", 2)}
    assert set(keys(listing(world, "kind=unmatched&side=right"))) == {("right", 4), ("right", 5)}
    assert listing(world, f"job={world.job.id}")["total"] == 8
    assert listing(world, f"job={world.job.id + 1000}")["total"] == 0
    assert keys(listing(world, "q=globex")) == [("left", 4), ("right", 3)]
    assert keys(listing(world, "q=inv-9")) == [("right", 5)]
    first = world.viewer.get(world.url("/exceptions?per_page=3&page=2")).get_json()
    assert first["total"] == 8 and len(first["items"]) == 3 and first["page"] == 2
    bad = world.viewer.get(world.url("/exceptions?status=pending"))
    assert bad.status_code == 422 and bad.get_json()["errors"][0]["field"].endswith("status")


def test_read_one_exception_and_not_another_projects(world, as_user):
    eid = world.eid("left", 2)
    body = world.viewer.get(world.url(f"/exceptions/{eid}")).get_json()
    assert (body["kind"], body["amount"], body["currency"], body["status"]) == (
        "break",
        "250.00",
        "EUR",
        "open",
    )
    assert body["counterpart"][0]["amount"] == "245.00" and body["diff"]["amount_diff"] == "5.00"
    stranger = as_user(Role.analyst)
    other = stranger.post("/api/projects", json={"name": "Elsewhere"}).get_json()["id"]
    assert stranger.get(f"/api/projects/{other}/exceptions/{eid}").status_code == 404
    assert stranger.get(world.url(f"/exceptions/{eid}")).status_code == 404
    assert world.viewer.get(world.url("/exceptions/999999")).status_code == 404


def test_assign_resolve_reopen_close_with_audit(world):
    eid = world.eid("right", 4)
    url = world.url(f"/exceptions/{eid}")
    editor_id = world.editor.user.id
    assigned = world.editor.patch(url, json={"assignee_id": editor_id})
    assert assigned.status_code == 200, assigned.get_json()
    assert (assigned.get_json()["status"], assigned.get_json()["assignee_id"]) == (
        "assigned",
        editor_id,
    )
    assert listing(world, f"assignee={editor_id}")["total"] == 1
    assert listing(world, "status=assigned")["total"] == 1

    no_reason = world.editor.patch(url, json={"status": "resolved"})
    assert no_reason.status_code == 422
    assert no_reason.get_json()["errors"][0]["field"] == "reason_code"
    unknown = world.editor.patch(url, json={"status": "resolved", "reason_code": "vibes"})
    assert unknown.status_code == 422
    resolved = world.editor.patch(
        url, json={"status": "resolved", "reason_code": "bank_fee", "note": "fee booked late"}
    )
    assert resolved.status_code == 200
    body = resolved.get_json()
    assert (body["status"], body["reason_code"], body["note"]) == (
        "resolved",
        "bank_fee",
        "fee booked late",
    )
    assert body["resolved_at"] is not None and body["assignee_id"] == editor_id

    again = world.editor.patch(url, json={"status": "resolved", "reason_code": "other"})
    assert again.status_code == 409 and "already resolved" in again.get_json()["detail"]
    assert again.get_json()["code"] == "invalid_transition"
    assign_resolved = world.editor.patch(url, json={"assignee_id": editor_id})
    assert assign_resolved.status_code == 409 and "reopen" in assign_resolved.get_json()["detail"]

    reopened = world.owner.patch(url, json={"status": "reopened"})
    assert reopened.status_code == 200
    assert (
        reopened.get_json()["status"],
        reopened.get_json()["resolved_at"],
        reopened.get_json()["reason_code"],
    ) == ("reopened", None, None)
    assert world.owner.patch(url, json={"status": "reopened"}).status_code == 409
    closed = world.owner.patch(url, json={"status": "closed"})
    assert closed.status_code == 200 and closed.get_json()["status"] == "closed"
    assert closed.get_json()["resolved_at"] is not None

    events = world.viewer.get(world.url("/audit?object_type=exception")).get_json()["items"]
    actions = [e["action"] for e in events if e["object_id"] == str(eid)]
    assert actions == [
        "exception.close",
        "exception.reopen",
        "exception.resolve",
        "exception.assign",
    ]
    resolve = next(e for e in events if e["action"] == "exception.resolve")
    assert resolve["before"]["status"] == "assigned" and resolve["after"]["status"] == "resolved"
    assert resolve["after"]["reason_code"] == "bank_fee"
    assert resolve["actor"] == world.editor.user.username


def test_assignee_must_work_in_the_project(world, as_user):
    url = world.url(f"/exceptions/{world.eid('left', 3)}")
    outsider = as_user(Role.analyst)
    response = world.editor.patch(url, json={"assignee_id": outsider.user.id})
    assert response.status_code == 422 and "not a member" in response.get_json()["detail"]
    response = world.editor.patch(url, json={"assignee_id": world.viewer.user.id})
    assert response.status_code == 422 and "viewer" in response.get_json()["detail"]
    assert world.editor.patch(url, json={"status": "assigned"}).status_code == 422
    assigned = world.editor.patch(url, json={"assignee_id": world.owner.user.id})
    assert assigned.get_json()["status"] == "assigned"
    unassigned = world.editor.patch(url, json={"assignee_id": None})
    assert (unassigned.get_json()["status"], unassigned.get_json()["assignee_id"]) == ("open", None)


def test_note_only_and_empty_changes(world):
    url = world.url(f"/exceptions/{world.eid('left', 5)}")
    noted = world.editor.patch(url, json={"note": "USD wire, check FX desk"})
    assert noted.status_code == 200 and noted.get_json()["status"] == "open"
    assert listing(world, "q=fx desk")["total"] == 1
    assert world.editor.patch(url, json={}).status_code == 422
    reason_alone = world.editor.patch(url, json={"reason_code": "other"})
    assert reason_alone.status_code == 422


def test_viewers_read_but_do_not_change(world):
    eid = world.eid("left", 3)
    assert world.viewer.get(world.url(f"/exceptions/{eid}")).status_code == 200
    response = world.viewer.patch(
        world.url(f"/exceptions/{eid}"), json={"status": "resolved", "reason_code": "other"}
    )
    assert response.status_code == 403
    assert (
        world.viewer.post(world.url(f"/exceptions/{eid}/comments"), json={"body": "hi"}).status_code
        == 403
    )
    assert world.viewer.get(world.url(f"/exceptions/{eid}")).get_json()["status"] == "open"


def test_comments(world):
    eid = world.eid("left", 3)
    url = world.url(f"/exceptions/{eid}/comments")
    first = world.editor.post(url, json={"body": "Looks like a card fee"})
    assert first.status_code == 201, first.get_json()
    assert first.get_json()["author"] == world.editor.user.username
    world.owner.post(url, json={"body": "Agreed, resolve it"})
    assert world.editor.post(url, json={"body": ""}).status_code == 422
    page = world.viewer.get(url).get_json()
    assert page["total"] == 2
    assert [(c["author"], c["body"]) for c in page["items"]] == [
        (world.editor.user.username, "Looks like a card fee"),
        (world.owner.user.username, "Agreed, resolve it"),
    ]
    events = world.viewer.get(world.url("/audit?action=exception.comment")).get_json()
    assert events["total"] == 2 and events["items"][0]["after"]["body"] == "Agreed, resolve it"
