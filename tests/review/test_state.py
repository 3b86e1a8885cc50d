"""The current state: what people decided shows in results, state, exports, analytics, audit.

The records of the world (tests/review/helpers.py, RULES_1):

    left 1 INV-1 matched              right 1 INV-1 matched
    left 2 INV-2 break 250.00         right 2 INV-2 break 245.00
    left 3 INV-3 unmatched 75.50      right 4 INV-8 unmatched 45.50, right 5 INV-9 30.00
    left 4 X-9 suggested              right 3 Y-7 suggested (40.00)
    left 5 INV-5 unmatched 12.00 USD
"""

from __future__ import annotations

import csv
import io

from tests.review.helpers import RULES_1


def state(world, job_id=None, client=None):
    response = (client or world.viewer).get(world.url(f"/jobs/{job_id or world.job.id}"))
    assert response.status_code == 200, response.get_json()
    return response.get_json()["state"]


def records(world, job_id=None, **params):
    query = "&".join(f"{k}={v}" for k, v in {"per_page": 50, **params}.items())
    response = world.viewer.get(world.url(f"/jobs/{job_id or world.job.id}/results?{query}"))
    assert response.status_code == 200, response.get_json()
    return {(r["side"], r["row"]): r for r in response.get_json()["items"]}


def export(world, job_id=None, **params):
    query = "&".join(f"{k}={v}" for k, v in params.items())
    response = world.viewer.get(world.url(f"/jobs/{job_id or world.job.id}/export?{query}"))
    assert response.status_code == 200
    return list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))


def current(world, job_id=None):
    return {(r["side"], int(r["row"])): r["status"] for r in export(world, job_id)}


def manual_match(world, client, left, right, **extra):
    return client.post(
        world.url(f"/jobs/{world.job.id}/manual-matches"),
        json={"left_rows": left, "right_rows": right, **extra},
    )


def test_a_period_closed_as_a_finance_team_would(world):
    first = state(world)
    assert first["match_rate"] == 0.2 and first["auto_match_rate"] == 0.2
    assert first["manual_match_rate"] == 0.0 and first["explained_rate"] == 0.2
    assert first["complete"] is False and first["signed_off_at"] is None

    # 1. Match INV-3 by hand with the two transfers that add up to it.
    made = manual_match(world, world.editor, [3], [4, 5])
    assert made.status_code == 201, made.get_json()
    mid = made.get_json()["id"]
    page = records(world)
    for key in (("left", 3), ("right", 4), ("right", 5)):
        assert page[key]["status"] == "matched" and page[key]["pass"] == "manual"
        assert page[key]["decided_by"] == "person" and page[key]["match_id"] == 3
        assert page[key]["engine_status"] == "unmatched"
    assert state(world)["match_rate"] == 0.5 and state(world)["manual_match_rate"] == 0.3
    assert current(world)[("right", 5)] == "matched"
    assert records(world, view="engine")[("right", 5)]["status"] == "unmatched"

    # 2. Accept the suggestion X-9 / Y-7.
    accepted = world.editor.post(world.url(f"/exceptions/{world.eid('left', 4)}/accept"))
    assert accepted.status_code == 200
    page = records(world)
    assert page[("left", 4)]["status"] == "matched" and page[("left", 4)]["pass"] == "similar"
    assert state(world)["match_rate"] == 0.7

    # 3. Write off the 5.00 of INV-2: over the limit, so a colleague has to approve it.
    changed = world.owner.patch(
        world.url("/settings"),
        json={"require_approval": "over_limit", "write_off_limit": {"EUR": "1.00"}},
    )
    assert changed.status_code == 200, changed.get_json()
    pending = manual_match(world, world.editor, [2], [2], write_off_reason="bank charge")
    assert pending.status_code == 201 and pending.get_json()["status"] == "pending_approval"
    waiting = state(world)
    assert waiting["pending_approvals"] == 1 and waiting["complete"] is False
    assert records(world)[("left", 2)]["pending"] is True
    assert records(world)[("left", 2)]["status"] == "break"  # not matched until approved
    listed = world.viewer.get(world.url("/approvals?status=pending")).get_json()
    [approval] = listed["items"]
    assert (approval["kind"], approval["amount"], approval["currency"]) == (
        "manual_match",
        "5.00",
        "EUR",
    )
    assert approval["maker_id"] == world.editor.user.id
    own = world.editor.post(world.url(f"/approvals/{approval['id']}/approve"), json={})
    assert own.status_code == 403 and own.get_json()["code"] == "own_approval"
    assert (
        world.viewer.post(world.url(f"/approvals/{approval['id']}/approve"), json={}).status_code
        == 403
    )
    approved = world.owner.post(
        world.url(f"/approvals/{approval['id']}/approve"), json={"note": "fee confirmed"}
    )
    assert approved.status_code == 200 and approved.get_json()["status"] == "approved"
    assert records(world)[("left", 2)]["status"] == "matched"
    assert state(world)["pending_approvals"] == 0

    # 4. Sign-off is refused while anything is unexplained, naming it.
    refused = world.owner.post(world.url(f"/jobs/{world.job.id}/sign-off"))
    assert refused.status_code == 409 and refused.get_json()["code"] == "job_incomplete"
    assert refused.get_json()["unexplained"] == 1

    # 5. Resolve the last one with a reason: explained, still unmatched.
    resolved = world.editor.patch(
        world.url(f"/exceptions/{world.eid('left', 5)}"),
        json={"status": "resolved", "reason_code": "timing_difference"},
    )
    assert resolved.status_code == 200
    done = state(world)
    assert done["match_rate"] == 0.9 and done["explained_rate"] == 1.0 and done["complete"]
    assert records(world)[("left", 5)]["status"] == "unmatched"
    assert records(world)[("left", 5)]["explained"] is True
    assert records(world)[("left", 5)]["reason_code"] == "timing_difference"

    # 6. Only an owner signs off; then nothing about the job changes.
    assert world.editor.post(world.url(f"/jobs/{world.job.id}/sign-off")).status_code == 403
    signed = world.owner.post(world.url(f"/jobs/{world.job.id}/sign-off"))
    assert signed.status_code == 200, signed.get_json()
    assert signed.get_json()["state"]["signed_off_by"] == world.owner.user.id
    assert state(world)["signed_off_at"] is not None
    for attempt in (
        world.editor.patch(
            world.url(f"/exceptions/{world.eid('left', 5)}"), json={"status": "reopened"}
        ),
        world.editor.delete(world.url(f"/manual-matches/{mid}")),
        world.editor.post(
            world.url(f"/exceptions/{world.eid('left', 5)}/comments"), json={"body": "x"}
        ),
        world.owner.post(world.url(f"/jobs/{world.job.id}/sign-off")),
    ):
        assert attempt.status_code == 409
        assert attempt.get_json()["code"] == "job_signed_off"

    # 7. Export, analytics and audit tell the same story.
    final = current(world)
    assert list(final.values()).count("matched") == 9 and final[("left", 5)] == "unmatched"
    data = world.viewer.get(world.url("/analytics")).get_json()
    assert data["auto_vs_manual"]["auto"] == 2 and data["auto_vs_manual"]["manual"] == 7
    assert data["auto_vs_manual"]["explained"] == 10
    assert data["open_exceptions"]["total"] == 0 and data["unreconciled"] == []
    actions = [
        e["action"] for e in world.viewer.get(world.url("/audit?per_page=100")).get_json()["items"]
    ]
    for action in (
        "manual_match.create",
        "exception.accept",
        "project.settings",
        "approval.approve",
        "exception.resolve",
        "job.sign_off",
    ):
        assert action in actions

    # 8. A re-run on the same pair (through the API and the runner) keeps all of it.
    posted = world.editor.post(
        world.url("/jobs"),
        json={"left_source_id": world.left.id, "right_source_id": world.right.id, "rules": RULES_1},
    )
    assert posted.status_code == 202, posted.get_json()
    job2 = posted.get_json()["id"]
    again = state(world, job2)
    assert again["match_rate"] == 0.9 and again["complete"] is True
    assert again["signed_off_at"] is None
    assert state(world)["superseded_by"] == job2
    assert current(world, job2) == final


def test_undo_returns_the_records_to_the_exceptions_with_their_history(world):
    eid = world.eid("left", 3)
    world.editor.post(world.url(f"/exceptions/{eid}/comments"), json={"body": "check INV-8"})
    mid = manual_match(world, world.editor, [3], [4, 5]).get_json()["id"]
    listed = world.viewer.get(world.url(f"/jobs/{world.job.id}/manual-matches")).get_json()
    assert [m["id"] for m in listed["items"]] == [mid] and listed["items"][0]["status"] == "active"
    assert world.viewer.get(world.url(f"/manual-matches/{mid}")).get_json()["left_rows"] == [3]
    assert world.viewer.delete(world.url(f"/manual-matches/{mid}")).status_code == 403
    undone = world.editor.delete(world.url(f"/manual-matches/{mid}"))
    assert undone.status_code == 200 and undone.get_json()["status"] == "undone"
    exception = world.viewer.get(world.url(f"/exceptions/{eid}")).get_json()
    assert exception["status"] == "reopened" and exception["manual_match_id"] is None
    comments = world.viewer.get(world.url(f"/exceptions/{eid}/comments")).get_json()
    assert [c["body"] for c in comments["items"]] == ["check INV-8"]
    assert records(world)[("left", 3)]["status"] == "unmatched"
    assert state(world)["match_rate"] == 0.2
    again = world.editor.delete(world.url(f"/manual-matches/{mid}"))
    assert again.status_code == 409
    audit = world.viewer.get(world.url("/audit?per_page=50")).get_json()["items"]
    assert {"manual_match.create", "manual_match.undo"} <= {e["action"] for e in audit}


def test_a_rejected_suggestion_is_unmatched_by_a_person(world):
    rejected = world.editor.post(world.url(f"/exceptions/{world.eid('left', 4)}/reject"))
    assert rejected.status_code == 200
    page = records(world)
    assert page[("left", 4)]["status"] == "unmatched"
    assert page[("left", 4)]["decided_by"] == "person"
    assert page[("left", 4)]["engine_status"] == "suggested"
    assert records(world, status="suggested") == {}
    assert set(records(world, status="unmatched")) >= {("left", 4), ("right", 3)}


def test_rejecting_a_write_off_returns_the_records_to_work(world):
    world.owner.patch(world.url("/settings"), json={"require_approval": "always"})
    made = manual_match(world, world.editor, [2], [2], write_off_reason="fee")
    [approval] = world.viewer.get(world.url("/approvals?status=pending")).get_json()["items"]
    rejected = world.owner.post(
        world.url(f"/approvals/{approval['id']}/reject"), json={"note": "no such fee"}
    )
    assert rejected.status_code == 200 and rejected.get_json()["status"] == "rejected"
    match = world.viewer.get(world.url(f"/manual-matches/{made.get_json()['id']}")).get_json()
    assert match["status"] == "rejected"
    exception = world.viewer.get(world.url(f"/exceptions/{world.eid('left', 2)}")).get_json()
    assert exception["status"] == "open" and exception["manual_match_id"] is None
    assert state(world)["pending_approvals"] == 0
    twice = world.owner.post(world.url(f"/approvals/{approval['id']}/approve"), json={})
    assert twice.status_code == 409


def test_a_write_off_resolution_needs_approval_when_the_settings_say_so(world):
    world.owner.patch(world.url("/settings"), json={"require_approval": "always"})
    eid = world.eid("left", 5)
    response = world.editor.patch(
        world.url(f"/exceptions/{eid}"), json={"status": "resolved", "reason_code": "written_off"}
    )
    assert response.status_code == 200 and response.get_json()["status"] == "pending_approval"
    assert state(world)["explained_rate"] == 0.2  # pending is not explained
    [approval] = world.viewer.get(world.url("/approvals?status=pending")).get_json()["items"]
    assert (approval["kind"], approval["amount"], approval["currency"]) == (
        "resolution",
        "12.00",
        "USD",
    )
    blocked = world.editor.patch(world.url(f"/exceptions/{eid}"), json={"status": "closed"})
    assert blocked.status_code == 409 and blocked.get_json()["code"] == "pending_approval"
    world.owner.post(world.url(f"/approvals/{approval['id']}/approve"), json={})
    resolved = world.viewer.get(world.url(f"/exceptions/{eid}")).get_json()
    assert resolved["status"] == "resolved" and resolved["reason_code"] == "written_off"
    assert state(world)["explained_rate"] == 0.3


def test_settings_reason_codes_are_the_projects_own(world):
    default = world.viewer.get(world.url("/settings")).get_json()
    assert "timing_difference" in default["reason_codes"] and default["require_approval"] == "never"
    assert (
        world.editor.patch(world.url("/settings"), json={"reason_codes": ["x"]}).status_code == 403
    )
    changed = world.owner.patch(world.url("/settings"), json={"reason_codes": ["period_end"]})
    assert changed.get_json()["reason_codes"] == ["period_end"]
    eid = world.eid("left", 5)
    refused = world.editor.patch(
        world.url(f"/exceptions/{eid}"), json={"status": "resolved", "reason_code": "bank_fee"}
    )
    assert refused.status_code == 422
    ok = world.editor.patch(
        world.url(f"/exceptions/{eid}"), json={"status": "resolved", "reason_code": "period_end"}
    )
    assert ok.status_code == 200
    bad = world.owner.patch(world.url("/settings"), json={"write_off_limit": {"EUR": "-1"}})
    assert bad.status_code == 422


def test_results_filters_and_keyset_paging(world):
    assert set(records(world, side="right", status="unmatched")) == {("right", 4), ("right", 5)}
    assert set(records(world, key="inv-2")) == {("left", 2), ("right", 2)}
    assert set(records(world, q="globex")) == {("left", 4), ("right", 3)}
    assert set(records(world, min_amount="45", max_amount="100")) == {
        ("left", 1),
        ("right", 1),
        ("left", 3),
        ("right", 4),
    }
    assert set(records(world, match_id=2)) == {("left", 2), ("right", 2)}
    first = world.viewer.get(world.url(f"/jobs/{world.job.id}/results?per_page=4")).get_json()
    assert first["total"] == 10 and len(first["items"]) == 4 and first["next"]
    second = world.viewer.get(
        world.url(f"/jobs/{world.job.id}/results?per_page=4&after={first['next']}")
    ).get_json()
    rows = [(r["side"], r["row"]) for r in first["items"] + second["items"]]
    assert rows == sorted(rows) and len(set(rows)) == 8
    bad = world.viewer.get(world.url(f"/jobs/{world.job.id}/results?after=nonsense"))
    assert bad.status_code == 422
