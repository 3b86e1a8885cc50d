"""publish_exceptions: what a finished job leaves to review, and how a re-run carries work over."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest
from sqlalchemy import event, select, text

from recon.extensions import db
from recon.projects.models import ProjectRole
from recon.review.models import Comment, ReconException
from recon.review.publish import SQLITE_PUBLISH_CACHE_KIB, read_ahead
from recon.users.models import Role
from tests.review.helpers import BANK, LEDGER, RULES_1, RULES_2, run_job


def by_record(world):
    return {
        (e.side, e.row): e for e in db.session.query(ReconException).filter_by(project_id=world.pid)
    }


def test_every_break_unmatched_and_suggested_record_becomes_an_exception(world):
    assert world.counts == {"opened": 8, "updated": 0, "kept_resolved": 0, "closed": 0}
    found = by_record(world)
    assert {k: e.kind.value for k, e in found.items()} == {
        ("left", 2): "break",
        ("right", 2): "break",
        ("left", 3): "unmatched",
        ("left", 5): "unmatched",
        ("right", 4): "unmatched",
        ("right", 5): "unmatched",
        ("left", 4): "suggested",
        ("right", 3): "suggested",
    }
    brk = found[("left", 2)]
    assert (brk.key, brk.amount, brk.scale, brk.currency) == (
        "INV-2",
        "250.00",
        2,
        "EUR",
    )
    assert brk.date.isoformat() == "2024-03-02" and brk.description == "Payment Beta"
    assert brk.status.value == "open" and brk.job_id == world.job.id
    assert brk.pair_key == f"{world.left.id}:{world.right.id}" and brk.pass_name == "break"
    assert brk.counterpart == [
        {
            "side": "right",
            "row": 2,
            "key": "INV-2",
            "amount": "245.00",
            "date": "2024-03-02",
            "currency": "EUR",
        }
    ]
    assert brk.diff == {"amount_diff": "5.00", "date_diff_days": 0, "fields": ["amount"]}
    suggestion = found[("right", 3)]
    assert suggestion.match_id == found[("left", 4)].match_id is not None
    assert suggestion.pass_name == "similar" and float(suggestion.confidence) > 80
    assert [c["key"] for c in suggestion.counterpart] == ["X-9"]
    lonely = found[("left", 5)]
    assert (lonely.currency, lonely.amount, lonely.counterpart) == ("USD", "12.00", None)
    assert lonely.diff["fields"] == [] and lonely.match_id is None


def test_a_rerun_keeps_resolutions_assignees_and_comments(world):
    found = by_record(world)
    resolved, assigned = found[("left", 3)], found[("right", 4)]
    response = world.editor.patch(
        world.url(f"/exceptions/{resolved.id}"),
        json={"status": "resolved", "reason_code": "bank_fee"},
    )
    assert response.status_code == 200, response.get_json()
    response = world.editor.patch(
        world.url(f"/exceptions/{assigned.id}"),
        json={"assignee_id": world.editor.user.id, "note": "chasing"},
    )
    assert response.status_code == 200, response.get_json()
    assert (
        world.editor.post(
            world.url(f"/exceptions/{assigned.id}/comments"), json={"body": "asked the bank"}
        ).status_code
        == 201
    )

    job2, counts = world.rerun(RULES_2)
    # INV-1 breaks now (dates differ), INV-2 matches within 5.00, INV-3 stays resolved.
    assert counts == {"opened": 2, "updated": 5, "kept_resolved": 1, "closed": 2}
    db.session.expire_all()
    after = by_record(world)
    assert len(after) == 10
    kept = after[("left", 3)]
    assert (kept.status.value, kept.reason_code, kept.job_id) == (
        "resolved",
        "bank_fee",
        world.job.id,
    )
    moved = after[("right", 4)]
    assert moved.id == assigned.id and moved.job_id == job2.id
    assert (moved.status.value, moved.assignee_id, moved.note) == (
        "assigned",
        world.editor.user.id,
        "chasing",
    )
    assert [c.body for c in db.session.query(Comment).filter_by(exception_id=moved.id)] == [
        "asked the bank"
    ]
    for side in ("left", "right"):
        closed = after[(side, 2)]
        assert (closed.status.value, closed.reason_code) == ("closed", "matched_by_job")
        assert closed.resolved_at is not None
        reopened_as_break = after[(side, 1)]
        assert (reopened_as_break.kind.value, reopened_as_break.status.value) == ("break", "open")
        assert reopened_as_break.job_id == job2.id
    was_suggested = after[("left", 4)]
    assert (was_suggested.kind.value, was_suggested.counterpart) == ("unmatched", None)
    listed = world.viewer.get(world.url(f"/exceptions?job={job2.id}&per_page=100")).get_json()
    assert listed["total"] == 7  # the resolved one and the two closed stay with job 1


def test_read_ahead_yields_every_batch_in_order_and_raises_the_readers_error():
    assert list(read_ahead(iter_batches(5))) == [[(i,)] for i in range(5)]

    def failing():
        yield [(1,)]
        raise ValueError("the reader broke")

    seen = []
    with pytest.raises(ValueError, match="the reader broke"):
        for rows in read_ahead(failing()):
            seen.append(rows)
    assert seen == [[(1,)]]


def test_read_ahead_stopped_early_closes_the_reader_and_its_thread_ends():
    closed = threading.Event()

    def endless():
        try:
            n = 0
            while True:
                yield [(n,)]
                n += 1
        finally:
            closed.set()

    ahead = read_ahead(endless(), depth=2)
    assert next(ahead) == [(0,)]
    ahead.close()  # the writer stops (an error, a cancel): the reader must not run on
    assert closed.wait(5)
    assert not any(t.name == "recon-publish-read" for t in threading.enumerate())


def iter_batches(n):
    for i in range(n):
        yield [(i,)]


def test_a_publish_writes_with_a_larger_sqlite_page_cache_then_restores_it_and_stamps_as_text(
    app, factory, as_user
):
    connection = db.session.connection()
    sqlite = connection.dialect.name == "sqlite"
    before = connection.exec_driver_sql("PRAGMA cache_size").one()[0] if sqlite else None
    owner = as_user(Role.analyst)
    project = factory.project(members={owner.user: ProjectRole.owner})
    left = factory.source(project, owner.user, csv=BANK, name="bank")
    right = factory.source(project, owner.user, csv=LEDGER, name="ledger")
    # The page cache each write into the exceptions table ran with.
    during: list[int] = []

    def seen(conn, _cursor, statement, *_args):
        if sqlite and statement.startswith("INSERT INTO exceptions"):
            raw = conn.connection.dbapi_connection
            during.append(raw.execute("PRAGMA cache_size").fetchone()[0])

    # A stamp on a whole second: Python's isoformat would leave out the microseconds.
    now = datetime(2026, 12, 2, 10, 0, 0, tzinfo=UTC)
    event.listen(db.engine, "before_cursor_execute", seen)
    try:
        run_job(app, project.id, left, right, RULES_1, owner.user.id, now=now)
    finally:
        event.remove(db.engine, "before_cursor_execute", seen)
    opened = db.session.execute(
        select(ReconException.opened_at).where(ReconException.project_id == project.id)
    ).scalars()
    assert set(opened) == {now}
    if not sqlite:
        return
    assert during == [-SQLITE_PUBLISH_CACHE_KIB]  # the publish's cache while it wrote
    assert db.session.connection().exec_driver_sql("PRAGMA cache_size").one()[0] == before
    # The insert path stores the dialect's text, as the merge path's parameters and the ORM do.
    raw = db.session.execute(
        text("SELECT DISTINCT opened_at FROM exceptions WHERE project_id = :p"), {"p": project.id}
    ).scalars()
    assert list(raw) == ["2026-12-02 10:00:00.000000"]
