"""What the services gained for the workspace, through the API that shares them: result and
exception filters, bulk accept/reject, audit per object, a manual match's balance, the upload
preview (which stores nothing)."""

from __future__ import annotations

import io
from decimal import Decimal

import pytest

from recon.extensions import db
from recon.projects.models import Project
from recon.review.manual import get_balance
from recon.sources.models import Source
from recon.sources.service import Upload, preview_upload
from tests.review.helpers import BANK, build_world


@pytest.fixture
def world(app, factory, as_user):
    return build_world(app, factory, as_user)


def rows(response):
    body = response.get_json()
    assert response.status_code == 200, body
    return [(r["side"], r["row"]) for r in body["items"]]


def test_results_filter_by_pass_amount_text_and_match(world):
    url = world.url(f"/jobs/{world.job.id}/results")
    get = world.viewer.get
    assert rows(get(f"{url}?pass=exact")) == [("left", 1), ("right", 1)]
    assert rows(get(f"{url}?pass=break")) == [("left", 2), ("right", 2)]
    # By size: 40.00 and 45.50 are between 40 and 50 (sign ignored), 75.50 is not.
    assert rows(get(f"{url}?min_amount=40&max_amount=50")) == [
        ("left", 4),
        ("right", 3),
        ("right", 4),
    ]
    assert rows(get(f"{url}?q=GLOBEX")) == [("left", 4), ("right", 3)]  # description, any case
    assert rows(get(f"{url}?q=inv-9")) == [("right", 5)]  # key
    match_id = get(f"{url}?pass=break").get_json()["items"][0]["match_id"]
    assert rows(get(f"{url}?match_id={match_id}")) == [("left", 2), ("right", 2)]
    page = get(f"{url}?q=inv&min_amount=40").get_json()
    assert page["total"] == len(page["items"]) == 6  # the count honours the source filters too
    bad = get(f"{url}?min_amount=-1&max_amount=1e-40")
    assert bad.status_code == 422
    assert {e["field"] for e in bad.get_json()["errors"]} == {
        "query.min_amount",
        "query.max_amount",
    }
    csv = world.viewer.get(world.url(f"/jobs/{world.job.id}/export?q=globex")).get_data(
        as_text=True
    )
    assert len(csv.strip().splitlines()) == 3  # header and the two Globex records


def test_exceptions_filter_by_amount_and_ids_and_sort_by_size(world):
    get = world.viewer.get

    def ids(query):
        body = get(world.url(f"/exceptions?{query}")).get_json()
        return [(e["side"], e["row"]) for e in body["items"]]

    assert ids("min_amount=45.5&sort=largest") == [
        ("left", 2),
        ("right", 2),
        ("left", 3),
        ("right", 4),
    ]
    assert ids("max_amount=30&sort=smallest") == [("left", 5), ("right", 5)]
    assert ids(f"ids={world.eid('left', 3)}&ids={world.eid('right', 5)}") == [
        ("left", 3),
        ("right", 5),
    ]
    world.editor.patch(
        world.url(f"/exceptions/{world.eid('left', 3)}"),
        json={"status": "resolved", "reason_code": "bank_fee"},
    )
    assert ("left", 3) not in ids("unresolved=true")
    assert ("left", 3) in ids("unresolved=false") or ("left", 3) in ids("")


def test_bulk_accept_and_reject_go_suggestion_by_suggestion(world):
    bulk = world.url("/exceptions/bulk")
    answer = world.editor.post(bulk, json={"action": "accept", "filter": {"side": "left"}})
    assert answer.get_json() == {"updated": 1, "skipped": 3}  # one suggestion among four
    accepted = world.viewer.get(world.url(f"/exceptions/{world.eid('right', 3)}")).get_json()
    assert (accepted["status"], accepted["reason_code"]) == ("resolved", "matched_by_suggestion")
    again = world.editor.post(bulk, json={"action": "reject", "filter": {}})
    assert again.get_json()["updated"] == 0
    events = world.viewer.get(world.url("/audit?action=exception.accept")).get_json()
    assert events["total"] == 1


def test_audit_of_one_object(world):
    eid = world.eid("left", 2)
    world.editor.post(world.url(f"/exceptions/{eid}/comments"), json={"body": "looking"})
    world.editor.post(world.url(f"/exceptions/{world.eid('left', 3)}/comments"), json={"body": "x"})
    page = world.viewer.get(world.url(f"/audit?object_type=exception&object_id={eid}")).get_json()
    assert [(e["action"], e["object_id"]) for e in page["items"]] == [
        ("exception.comment", str(eid))
    ]


def test_balance_of_a_manual_match_changes_nothing(world, app):
    balance = get_balance(
        session=db.session,
        storage=app.extensions["recon_storage"],
        project=db.session.get(Project, world.pid),
        job_id=world.job.id,
        left_rows=[3],
        right_rows=[4, 5],
    )
    assert (balance.left, balance.right, balance.difference, balance.currency) == (
        "75.50",
        "75.50",
        "0.00",
        "EUR",
    )
    assert balance.exact == Decimal(0)
    still = world.viewer.get(world.url(f"/exceptions/{world.eid('left', 3)}")).get_json()
    assert still["status"] == "open"


def test_preview_reads_the_upload_as_it_would_be_stored_and_stores_nothing(app, factory):
    storage = app.extensions["recon_storage"]
    before = db.session.query(Source).count()
    files = sorted(p.name for p in storage.root.rglob("*") if p.is_file())
    preview = preview_upload(
        storage=storage,
        upload=Upload(
            stream=io.BytesIO(BANK.encode()),
            filename="bank.csv",
            name="b",
            mapping=None,
            options=None,
        ),
        max_bytes=2**20,
        rows=2,
    )
    assert preview.row_count == 5
    assert preview.mapping["key"] == "Reference" and preview.options["delimiter"] == ","
    assert [r["key"] for r in preview.rows] == ["INV-1", "INV-2"]
    assert preview.rows[0]["amount"] == "100.00"
    assert preview.sums == {"EUR": "465.50", "USD": "12.00"}
    assert db.session.query(Source).count() == before
    assert sorted(p.name for p in storage.root.rglob("*") if p.is_file()) == files
