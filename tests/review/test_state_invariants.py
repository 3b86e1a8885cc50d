"""Any sequence of decisions keeps every record in exactly one current status, the counts
adding up to the input, and the exceptions, the results and the state telling one story."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recon.engine.results import STATUSES
from recon.extensions import db
from recon.jobs.models import Job
from recon.jobs.results import Reader
from recon.review.state import _sources, applied_overrides
from tests.review.helpers import build_world

RECORDS = 10  # 5 a side in the world
LEFT_ROWS, RIGHT_ROWS = range(1, 6), range(1, 6)

op = st.one_of(
    st.tuples(
        st.just("match"),
        st.lists(st.sampled_from(LEFT_ROWS), min_size=1, max_size=2, unique=True),
        st.lists(st.sampled_from(RIGHT_ROWS), min_size=1, max_size=2, unique=True),
    ),
    st.tuples(st.just("undo"), st.integers(0, 3)),
    st.tuples(st.sampled_from(["accept", "reject"]), st.sampled_from(["left", "right"])),
    st.tuples(
        st.sampled_from(["resolve", "reopen"]),
        st.sampled_from(["left", "right"]),
        st.sampled_from(LEFT_ROWS),
    ),
)


def _apply(world, step):
    kind = step[0]
    if kind == "match":
        return world.editor.post(
            world.url(f"/jobs/{world.job.id}/manual-matches"),
            json={"left_rows": step[1], "right_rows": step[2], "write_off_reason": "test"},
        )
    if kind == "undo":
        listed = world.viewer.get(world.url(f"/jobs/{world.job.id}/manual-matches?status=active"))
        items = listed.get_json()["items"]
        if not items:
            return None
        return world.editor.delete(
            world.url(f"/manual-matches/{items[step[1] % len(items)]['id']}")
        )
    if kind in ("accept", "reject"):
        row = 4 if step[1] == "left" else 3  # the suggestion's records
        return world.editor.post(world.url(f"/exceptions/{world.eid(step[1], row)}/{kind}"))
    side, row = step[1], step[2]
    if (side, row) not in world.ids:
        return None
    body = (
        {"status": "resolved", "reason_code": "other"}
        if kind == "resolve"
        else {"status": "reopened"}
    )
    return world.editor.patch(world.url(f"/exceptions/{world.eid(side, row)}"), json=body)


def _counted_both_ways(world):
    """The state's counts from the summary and the decisions equal a count of the results."""
    with world.app.app_context():
        storage = world.app.extensions["recon_storage"]
        job = db.session.get(Job, world.job.id)
        left, right = _sources(db.session, job)
        table = applied_overrides(session=db.session, storage=storage, job=job)
        with Reader(storage=storage, job=job, left=left, right=right, overrides=table) as r:
            derived = r.counts()
            r.summary = {}  # no summary: the records are counted
            counted = r.counts()
    assert derived == counted
    assert sum(n for k, n in derived["left"].items() if k.startswith("status:")) == 5


def _check(world):
    _counted_both_ways(world)
    page = world.viewer.get(world.url(f"/jobs/{world.job.id}/results?per_page=50")).get_json()
    items = page["items"]
    keys = [(r["side"], r["row"]) for r in items]
    assert len(keys) == len(set(keys)) == page["total"] == RECORDS
    assert all(r["status"] in STATUSES for r in items)
    state = world.viewer.get(world.url(f"/jobs/{world.job.id}")).get_json()["state"]
    matched = sum(r["status"] == "matched" for r in items)
    person = sum(r["status"] == "matched" and r["decided_by"] == "person" for r in items)
    explained = sum(r["explained"] for r in items)
    assert state["match_rate"] == round(matched / RECORDS, 4)
    assert state["manual_match_rate"] == round(person / RECORDS, 4)
    assert state["explained_rate"] == round(explained / RECORDS, 4)
    assert state["complete"] == (explained == RECORDS and state["pending_approvals"] == 0)
    by_status = {
        s: world.viewer.get(world.url(f"/jobs/{world.job.id}/results?status={s}")).get_json()[
            "total"
        ]
        for s in STATUSES
    }
    assert sum(by_status.values()) == RECORDS
    exceptions = {
        (e["side"], e["row"]): e
        for e in world.viewer.get(world.url("/exceptions?per_page=50")).get_json()["items"]
    }
    for record in items:
        exc = exceptions.get((record["side"], record["row"]))
        if record["engine_status"] == "matched":
            assert record["status"] == "matched" and record["decided_by"] == "engine"
            continue
        assert exc is not None
        by_person = record["status"] == "matched" and record["decided_by"] == "person"
        resolved_as_match = exc["status"] == "resolved" and exc["reason_code"] in (
            "matched_manually",
            "matched_by_suggestion",
        )
        assert by_person == resolved_as_match, (record, exc)
        if exc["status"] in ("open", "assigned", "reopened"):
            assert not record["explained"]


@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=st.lists(op, min_size=1, max_size=6))
def test_any_sequence_of_decisions_keeps_one_status_per_record(app, factory, as_user, steps):
    world = build_world(app, factory, as_user)
    for step in steps:
        response = _apply(world, step)
        if response is not None:
            assert response.status_code in (200, 201, 409, 422), (step, response.get_json())
        _check(world)
