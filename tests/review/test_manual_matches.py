"""Manual matches: amounts read from the sources must balance, or carry a write-off reason."""

from __future__ import annotations

from tests.review.helpers import RULES_2


def match(world, client=None, **body):
    return (client or world.editor).post(
        world.url(f"/jobs/{world.job.id}/manual-matches"), json=body
    )


def status(world, side, row):
    body = world.viewer.get(world.url(f"/exceptions/{world.eid(side, row)}")).get_json()
    return body["status"], body["reason_code"]


def test_a_balanced_match_resolves_its_records(world):
    # left INV-3 75.50 = right INV-8 45.50 + INV-9 30.00
    response = match(world, left_rows=[3], right_rows=[4, 5], note="split payment")
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert (body["left_rows"], body["right_rows"], body["difference"]) == ([3], [4, 5], "0.00")
    assert (body["write_off_reason"], body["note"], body["job_id"]) == (
        None,
        "split payment",
        world.job.id,
    )
    for side, row in (("left", 3), ("right", 4), ("right", 5)):
        assert status(world, side, row) == ("resolved", "matched_manually")
    event = world.viewer.get(world.url("/audit?action=manual_match.create")).get_json()["items"]
    assert event[0]["after"]["difference"] == "0.00"
    assert sorted(event[0]["after"]["exception_ids"]) == sorted(
        world.eid(s, r) for s, r in (("left", 3), ("right", 4), ("right", 5))
    )
    # Those records are no longer open exceptions: matching them again is refused.
    again = match(world, left_rows=[3], right_rows=[4, 5])
    assert again.status_code == 422 and again.get_json()["code"] == "not_open_exceptions"


def test_an_unbalanced_match_needs_a_tolerance_or_a_write_off(world):
    response = match(world, left_rows=[3], right_rows=[4])
    assert response.status_code == 422
    problem = response.get_json()
    assert problem["code"] == "unbalanced" and problem["difference"] == "30.00"
    assert "30.00" in problem["detail"] and problem["errors"][0]["field"] == "write_off_reason"
    assert status(world, "left", 3) == ("open", None)
    short = match(world, left_rows=[3], right_rows=[4], tolerance="29.99")
    assert short.status_code == 422
    written_off = match(world, left_rows=[3], right_rows=[4], write_off_reason="bank charges")
    assert written_off.status_code == 201
    assert (written_off.get_json()["difference"], written_off.get_json()["write_off_reason"]) == (
        "30.00",
        "bank charges",
    )


def test_a_tolerance_covers_the_difference(world):
    response = match(world, left_rows=[3], right_rows=[4], tolerance="30.00")
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["difference"] == "30.00"


def test_records_that_are_not_open_exceptions_are_listed(world):
    response = match(world, left_rows=[1, 3], right_rows=[4, 77])
    assert response.status_code == 422
    assert response.get_json()["errors"] == [
        {"side": "left", "row": 1, "message": "not an open exception of this job"},
        {"side": "right", "row": 77, "message": "not an open exception of this job"},
    ]
    twice = match(world, left_rows=[3, 3], right_rows=[4])
    assert twice.status_code == 422 and twice.get_json()["errors"][0]["message"] == "listed twice"
    mixed = match(world, left_rows=[5], right_rows=[5], write_off_reason="x")
    assert mixed.status_code == 422 and mixed.get_json()["code"] == "mixed_currencies"
    assert match(world, left_rows=[], right_rows=[4]).status_code == 422
    assert match(world, left_rows=[3], right_rows=[4], tolerance="-1").status_code == 422


def test_rows_of_another_job_or_project(world, analyst):
    job2, _ = world.rerun(RULES_2)
    # After the re-run the open exceptions belong to the new job.
    old = match(world, left_rows=[5], right_rows=[4], write_off_reason="x")
    assert old.status_code == 422 and old.get_json()["code"] == "not_open_exceptions"
    moved = world.editor.post(
        world.url(f"/jobs/{job2.id}/manual-matches"), json={"left_rows": [4], "right_rows": [3]}
    )
    assert moved.status_code == 201, moved.get_json()  # X-9 and Y-7, both 40.00
    assert (
        world.editor.post(
            world.url("/jobs/999999/manual-matches"), json={"left_rows": [3], "right_rows": [4]}
        ).status_code
        == 404
    )
    other = analyst.post("/api/projects", json={"name": "Other"}).get_json()["id"]
    response = analyst.post(
        f"/api/projects/{other}/jobs/{world.job.id}/manual-matches",
        json={"left_rows": [3], "right_rows": [4, 5]},
    )
    assert response.status_code == 404
    assert match(world, client=world.viewer, left_rows=[3], right_rows=[4, 5]).status_code == 403
