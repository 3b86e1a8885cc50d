"""Key optional, key extracted, any field matchable (issue 14 item 3), through the jobs API."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from recon.jobs.models import Job

BANKS = Path(__file__).parent.parent / "data" / "banks"
# The bank credits one payout per batch; the processor lists the orders of each batch.
PAYOUTS = (
    b"Reference,Amount,Date\nPB-01,145.65,2024-03-03\npb-02 ,19.42,2024-03-04\n"
    b"PB-03,5.00,2024-03-04\n"
)
BATCH_FIELDS = {"fields": {"batch": "Reference"}}
ORDERS_MAPPING = {"key": "Order", "amount": "Net", "fields": {"batch": "Payout Batch"}}
BY_BATCH = {
    "passes": [{"name": "payout", "match_on": ["batch"], "cardinality": "one_to_many"}],
    "break_on": [],
}


def upload(user, pid, data: bytes, name: str, **form) -> dict:
    payload = {"name": name, "file": (io.BytesIO(data), f"{name}.csv")}
    payload.update({k: json.dumps(v) for k, v in form.items()})
    response = user.post(
        f"/api/projects/{pid}/sources", data=payload, content_type="multipart/form-data"
    )
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def post_job(user, pid, left, right, rules):
    return user.post(
        f"/api/projects/{pid}/jobs",
        json={"left_source_id": left["id"], "right_source_id": right["id"], "rules": rules},
    )


@pytest.fixture
def project(analyst):
    return analyst.post("/api/projects", json={"name": "Fields"}).get_json()["id"]


def test_payout_batches_match_their_orders_on_an_extra_field(analyst, project):
    bank = upload(analyst, project, PAYOUTS, "bank", mapping=BATCH_FIELDS)
    orders = upload(
        analyst,
        project,
        (BANKS / "csv_card_processor_batches.csv").read_bytes(),
        "orders",
        mapping=ORDERS_MAPPING,
    )
    assert bank["fields"] == ["batch"] and orders["fields"] == ["batch"]
    response = post_job(analyst, project, bank, orders, BY_BATCH)
    assert response.status_code == 202, response.get_json()
    job = analyst.get(f"/api/projects/{project}/jobs/{response.get_json()['id']}").get_json()
    assert job["status"] == "succeeded", job.get("error")
    left, right = job["summary"]["left"]["by_status"], job["summary"]["right"]["by_status"]
    # PB-01 = O-1 + O-2 (97.10 + 48.55), "pb-02 " = O-3 (normalised like keys); PB-03 has none.
    assert (left["matched"]["rows"], left["unmatched"]["rows"]) == (2, 1)
    assert right["matched"]["rows"] == 3
    results = analyst.get(
        f"/api/projects/{project}/jobs/{job['id']}/results?status=matched&side=right"
    ).get_json()
    assert sorted(r["match_id"] for r in results["items"]) == [1, 1, 2]


def test_the_same_field_on_the_key_instead_finds_nothing(analyst, project):
    # Without the extra field the orders' key is the order number: the batches can't meet.
    bank = upload(analyst, project, PAYOUTS, "bank", mapping=BATCH_FIELDS)
    orders = upload(
        analyst,
        project,
        (BANKS / "csv_card_processor_batches.csv").read_bytes(),
        "orders",
        mapping=ORDERS_MAPPING,
    )
    rules = {"passes": [{"name": "k", "match_on": ["key"], "cardinality": "one_to_many"}]}
    job = post_job(analyst, project, bank, orders, {**rules, "break_on": []}).get_json()
    done = analyst.get(f"/api/projects/{project}/jobs/{job['id']}").get_json()
    assert done["summary"]["left"]["by_status"]["matched"]["rows"] == 0


def test_a_field_only_one_source_has_is_refused_naming_what_is_there(analyst, project, app):
    bank = upload(analyst, project, PAYOUTS, "bank")  # no fields
    orders = upload(
        analyst,
        project,
        (BANKS / "csv_card_processor_batches.csv").read_bytes(),
        "orders",
        mapping=ORDERS_MAPPING,
    )
    response = post_job(analyst, project, bank, orders, BY_BATCH)
    assert response.status_code == 422
    body = response.get_json()
    assert body["errors"][0]["field"] == "passes[0].match_on[0]"
    assert "unknown field 'batch'" in body["errors"][0]["message"]
    from recon.extensions import db

    assert db.session.query(Job).count() == 0


def test_a_keyless_source_uploads_and_jobs_needing_the_key_are_refused(analyst, project):
    revolut = upload(
        analyst,
        project,
        (BANKS / "csv_revolut_no_key.csv").read_bytes(),
        "revolut",
        mapping={"date": "Completed Date"},
    )
    assert revolut["has_key"] is False
    ledger = upload(
        analyst,
        project,
        b"Reference,Amount,Date,Currency\nL1,-3.50,2024-02-02,GBP\nL2,50.00,2024-02-03,GBP\n",
        "ledger",
    )
    rules = {
        "passes": [
            {"name": "exact", "match_on": ["key"]},
            {"name": "amounts", "match_on": ["amount"]},
        ]
    }
    refused = post_job(analyst, project, revolut, ledger, rules)
    assert refused.status_code == 422
    body = refused.get_json()
    assert body["code"] == "source_has_no_key"
    assert "pass 'exact'" in body["detail"] and "left source" in body["detail"]
    assert [e["field"] for e in body["errors"]] == ["passes[0].match_on", "break_on"]
    ok = post_job(
        analyst,
        project,
        revolut,
        ledger,
        {
            "passes": [{"name": "amounts", "match_on": ["amount"], "date_window_days": 1}],
            "break_on": [],
        },
    )
    assert ok.status_code == 202, ok.get_json()
    done = analyst.get(f"/api/projects/{project}/jobs/{ok.get_json()['id']}").get_json()
    assert done["summary"]["left"]["by_status"]["matched"]["rows"] == 2


def test_rule_sets_may_name_extra_fields(analyst, project):
    saved = analyst.post(
        f"/api/projects/{project}/rulesets", json={"name": "payouts", "rules": BY_BATCH}
    )
    assert saved.status_code == 201, saved.get_json()
    bad = analyst.post(
        f"/api/projects/{project}/rulesets",
        json={"name": "bad", "rules": {"passes": [{"match_on": ["Not A Field!"]}]}},
    )
    assert bad.status_code == 422
