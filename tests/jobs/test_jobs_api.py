"""Jobs through the API with the inline runner: create, status, results, export, cancel, locks."""

from __future__ import annotations

import csv
import io
import json

import pytest

from recon.extensions import db
from recon.jobs.models import Job, JobStatus
from recon.review.models import ReconException

LEFT = """Reference,Amount,Date,Currency,Description
INV-1,100.00,2024-03-01,EUR,Invoice one
INV-2,250.00,2024-03-02,EUR,Invoice two
INV-3,75.50,2024-03-03,EUR,Invoice three
INV-4,-1250.00,2024-03-04,EUR,=HYPERLINK("http://evil")
INV-5,10.00,2024-03-05,EUR,Only on the left
"""
RIGHT = """Reference,Amount,Date,Currency,Description
INV-1,100.00,2024-03-01,EUR,Invoice one
INV-2,250.01,2024-03-03,EUR,Invoice two
INV-3,80.00,2024-03-03,EUR,Invoice three
INV-4,-1250.00,2024-03-04,EUR,Refund
INV-9,5.00,2024-03-05,EUR,Only on the right
"""
RULES = {
    "passes": [
        {
            "name": "exact",
            "match_on": ["key"],
            "amount_tolerance": {"absolute": "0"},
            "date_window_days": 0,
        },
        {
            "name": "tolerant",
            "match_on": ["key"],
            "amount_tolerance": {"absolute": "0.01"},
            "date_window_days": 3,
        },
    ],
    "break_on": ["key"],
}


def upload(client, pid, text, name):
    data = {"name": name, "file": (io.BytesIO(text.encode()), f"{name}.csv")}
    response = client.post(
        f"/api/projects/{pid}/sources", data=data, content_type="multipart/form-data"
    )
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


@pytest.fixture
def setup(analyst):
    pid = analyst.post("/api/projects", json={"name": "Jobs"}).get_json()["id"]
    return pid, upload(analyst, pid, LEFT, "left"), upload(analyst, pid, RIGHT, "right")


def start(client, pid, left, right, **extra):
    body = {"left_source_id": left, "right_source_id": right, "rules": RULES, **extra}
    return client.post(f"/api/projects/{pid}/jobs", json=body, headers=extra.pop("headers", {}))


def test_job_runs_and_reports_summary_results_and_exceptions(analyst, setup):
    pid, left, right = setup
    response = start(analyst, pid, left, right)
    assert response.status_code == 202
    job = response.get_json()
    assert response.headers["Location"].endswith(f"/api/projects/{pid}/jobs/{job['id']}")
    polled = analyst.get(response.headers["Location"]).get_json()
    assert polled["status"] == "succeeded" and polled["attempt"] == 1
    summary = polled["summary"]
    assert summary["left"]["rows"] == 5 and summary["right"]["rows"] == 5
    by_status = summary["left"]["by_status"]
    assert by_status["matched"]["rows"] == 3  # INV-1 exact, INV-4 exact, INV-2 tolerant
    assert by_status["break"]["rows"] == 1  # INV-3: 75.50 vs 80.00
    assert by_status["unmatched"]["rows"] == 1
    assert [p["name"] for p in summary["passes"]] == ["exact", "tolerant"]

    page = analyst.get(f"/api/projects/{pid}/jobs/{job['id']}/results?status=break").get_json()
    assert page["total"] == 2
    assert {(r["side"], r["key"], r["amount"]) for r in page["items"]} == {
        ("left", "INV-3", "75.50"),
        ("right", "INV-3", "80.00"),
    }
    assert page["items"][0]["diff_fields"].startswith("amount")

    exceptions = db.session.query(ReconException).filter_by(job_id=job["id"]).all()
    assert sorted((e.kind.value, e.side, e.key) for e in exceptions) == [
        ("break", "left", "INV-3"),
        ("break", "right", "INV-3"),
        ("unmatched", "left", "INV-5"),
        ("unmatched", "right", "INV-9"),
    ]


def test_export_streams_csv_neutralised_with_numbers_as_is(analyst, setup):
    pid, left, right = setup
    jid = start(analyst, pid, left, right).get_json()["id"]
    response = analyst.get(f"/api/projects/{pid}/jobs/{jid}/export?status=matched")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert {r["status"] for r in rows} == {"matched"} and len(rows) == 6
    inv4 = [r for r in rows if r["key"] == "INV-4" and r["side"] == "left"][0]
    assert inv4["amount"] == "-1250.00"  # numeric, not neutralised
    assert inv4["description"] == '\'=HYPERLINK("http://evil")'


def test_dry_run_publishes_no_exceptions(analyst, setup):
    pid, left, right = setup
    job = start(analyst, pid, left, right, dry_run=True).get_json()
    polled = analyst.get(f"/api/projects/{pid}/jobs/{job['id']}").get_json()
    assert polled["status"] == "succeeded" and polled["summary"]["left"]["rows"] == 5
    assert db.session.query(ReconException).filter_by(job_id=job["id"]).count() == 0


def test_bad_rules_are_422_listing_every_problem_and_create_nothing(analyst, setup):
    pid, left, right = setup
    bad = {"passes": [{"name": "x", "match_on": ["nope"], "amount_tolerance": {"absolute": "-1"}}]}
    response = analyst.post(
        f"/api/projects/{pid}/jobs",
        json={"left_source_id": left, "right_source_id": right, "rules": bad},
    )
    assert response.status_code == 422
    assert len(response.get_json()["errors"]) >= 2
    assert db.session.query(Job).count() == 0
    other = analyst.post(
        f"/api/projects/{pid}/jobs",
        json={"left_source_id": left, "right_source_id": 99999, "rules": RULES},
    )
    assert other.status_code == 422


def test_one_active_job_per_pair_is_409_naming_it(analyst, setup, app):
    pid, left, right = setup
    running = Job(
        project_id=pid,
        left_source_id=left,
        right_source_id=right,
        rules=RULES,
        status=JobStatus.running,
        progress={},
    )
    db.session.add(running)
    db.session.commit()
    response = start(analyst, pid, left, right)
    assert response.status_code == 409
    assert response.get_json()["running_job_id"] == running.id
    # The other direction is another pair and may run.
    assert start(analyst, pid, right, left).status_code == 202


def test_cancel_queued_job_and_finished_job_conflict(analyst, setup):
    pid, left, right = setup
    queued = Job(
        project_id=pid,
        left_source_id=left,
        right_source_id=right,
        rules=RULES,
        status=JobStatus.queued,
        progress={},
    )
    db.session.add(queued)
    db.session.commit()
    cancelled = analyst.post(f"/api/projects/{pid}/jobs/{queued.id}/cancel")
    assert cancelled.status_code == 200 and cancelled.get_json()["status"] == "cancelled"
    again = analyst.post(f"/api/projects/{pid}/jobs/{queued.id}/cancel")
    assert again.status_code == 409


def test_failed_job_keeps_previous_results(analyst, setup, app):
    pid, left, right = setup
    first = start(analyst, pid, left, right).get_json()
    before = analyst.get(f"/api/projects/{pid}/jobs/{first['id']}/results").get_json()
    app.config["RECON_MAX_CANDIDATES"] = 1
    try:
        failed = start(analyst, pid, left, right).get_json()
    finally:
        app.config["RECON_MAX_CANDIDATES"] = 50_000_000
    polled = analyst.get(f"/api/projects/{pid}/jobs/{failed['id']}").get_json()
    assert polled["status"] == "failed" and "exact" in polled["error"]
    assert analyst.get(f"/api/projects/{pid}/jobs/{failed['id']}/results").status_code == 409
    after = analyst.get(f"/api/projects/{pid}/jobs/{first['id']}/results").get_json()
    assert after == before
    assert db.session.query(ReconException).filter_by(job_id=first["id"]).count() == 4


def test_idempotency_key_replays_and_refuses_a_different_body(analyst, setup):
    pid, left, right = setup
    headers = {"Idempotency-Key": "abc-123"}
    body = {"left_source_id": left, "right_source_id": right, "rules": RULES}
    first = analyst.post(f"/api/projects/{pid}/jobs", json=body, headers=headers)
    replay = analyst.post(f"/api/projects/{pid}/jobs", json=body, headers=headers)
    assert first.status_code == replay.status_code == 202
    assert replay.get_json()["id"] == first.get_json()["id"]
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.headers["Location"] == first.headers["Location"]
    assert db.session.query(Job).count() == 1
    changed = analyst.post(
        f"/api/projects/{pid}/jobs", json={**body, "dry_run": True}, headers=headers
    )
    assert changed.status_code == 422 and changed.get_json()["code"] == "idempotency_key_reused"


def test_rulesets_are_versioned_and_jobs_record_the_version(analyst, setup):
    pid, left, right = setup
    v1 = analyst.post(f"/api/projects/{pid}/rulesets", json={"name": "monthly", "rules": RULES})
    assert v1.status_code == 201 and v1.get_json()["version"] == 1
    looser = json.loads(json.dumps(RULES))
    looser["passes"][1]["amount_tolerance"] = {"absolute": "5"}
    v2 = analyst.post(f"/api/projects/{pid}/rulesets", json={"name": "monthly", "rules": looser})
    assert v2.get_json()["version"] == 2
    listed = analyst.get(f"/api/projects/{pid}/rulesets").get_json()
    assert [(r["name"], r["version"]) for r in listed] == [("monthly", 2)]
    versions = analyst.get(f"/api/projects/{pid}/rulesets/{v2.get_json()['id']}/versions")
    assert [r["version"] for r in versions.get_json()] == [2, 1]
    job = analyst.post(
        f"/api/projects/{pid}/jobs",
        json={"left_source_id": left, "right_source_id": right, "ruleset_id": v2.get_json()["id"]},
    )
    done = analyst.get(job.headers["Location"]).get_json()
    assert (done["ruleset_id"], done["ruleset_version"]) == (v2.get_json()["id"], 2)
    assert done["summary"]["left"]["by_status"]["matched"]["rows"] == 4  # INV-3 within 5
    bad = analyst.post(f"/api/projects/{pid}/rulesets", json={"name": "x", "rules": {}})
    assert bad.status_code == 422


def test_source_used_by_a_job_can_not_be_deleted(analyst, setup):
    pid, left, right = setup
    start(analyst, pid, left, right)
    response = analyst.delete(f"/api/projects/{pid}/sources/{left}")
    assert response.status_code == 409 and response.get_json()["code"] == "source_in_use"


def test_finished_job_is_served_from_the_cache(analyst, setup, app):
    pid, left, right = setup
    jid = start(analyst, pid, left, right).get_json()["id"]
    first = analyst.get(f"/api/projects/{pid}/jobs/{jid}").get_json()
    cache = app.extensions["recon_cache"]
    assert cache.get(f"job:{jid}")["status"] == "succeeded"
    assert analyst.get(f"/api/projects/{pid}/jobs/{jid}").get_json() == first
    # Another project's id can't read it through the cache.
    other = analyst.post("/api/projects", json={"name": "Other"}).get_json()["id"]
    assert analyst.get(f"/api/projects/{other}/jobs/{jid}").status_code == 404


def test_bootstrap_fails_jobs_interrupted_by_a_restart(tmp_path):
    from recon import create_app
    from tests.conftest import Factory, app_config, migrate_schema

    app = create_app(
        app_config(tmp_path, f"sqlite:///{tmp_path / 'r.db'}", RECON_JOB_RUNNER="thread")
    )
    migrate_schema(app)
    with app.app_context():
        factory = Factory(app)
        user = factory.user(role="admin")
        project = factory.project(members={user: "owner"})
        left, right = factory.source(project, user), factory.source(project, user)
        orphan = Job(
            project_id=project.id,
            left_source_id=left.id,
            right_source_id=right.id,
            rules=RULES,
            status=JobStatus.running,
            progress={},
        )
        db.session.add(orphan)
        db.session.commit()
        result = app.test_cli_runner().invoke(args=["bootstrap"])
        assert result.exit_code == 0 and "1 job(s) interrupted" in result.output
        db.session.refresh(orphan)
        assert orphan.status == JobStatus.failed and "interrupted" in orphan.error
