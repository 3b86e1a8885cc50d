"""Job metrics, and the route label of the queries a job runs outside any request."""

import time

from prometheus_client.parser import text_string_to_metric_families

from recon import create_app
from tests.conftest import AuthClient, Factory, app_config, migrate_schema
from tests.jobs.test_jobs_api import RULES


def samples(client):
    text = client.get("/api/metrics").get_data(as_text=True)
    return [s for family in text_string_to_metric_families(text) for s in family.samples]


def test_a_job_on_the_thread_runner_is_counted_and_its_queries_carry_the_task_name(tmp_path):
    app = create_app(
        app_config(tmp_path, f"sqlite:///{tmp_path / 'm.db'}", RECON_JOB_RUNNER="thread")
    )
    migrate_schema(app)
    with app.app_context():
        factory = Factory(app)
        user = factory.user()
        project = factory.project(members={user: "owner"})
        left, right = factory.source(project, user), factory.source(project, user)
        client = AuthClient(app.test_client(), user, factory.token(user))
        body = {"left_source_id": left.id, "right_source_id": right.id, "rules": RULES}
        url = f"/api/projects/{project.id}/jobs"
    # Requests outside this app context, as a server makes them: each ends its transaction.
    response = client.post(url, json=body)
    assert response.status_code == 202
    deadline = time.monotonic() + 30
    while client.get(response.headers["Location"]).get_json()["status"] != "succeeded":
        assert time.monotonic() < deadline, "the job did not finish"
        time.sleep(0.1)
    found = samples(app.test_client())
    jobs = {s.labels["status"]: s.value for s in found if s.name == "reconciliation_jobs_total"}
    assert jobs == {"succeeded": 1.0}
    records = {
        s.labels["side"]: s.value
        for s in found
        if s.name == "reconciliation_records_processed_total"
    }
    assert records == {"left": 2.0, "right": 2.0}
    assert any(
        s.name == "reconciliation_job_duration_seconds_count" and s.value == 1 for s in found
    )
    task_queries = [
        s
        for s in found
        if s.name == "reconciliation_db_query_duration_seconds_count"
        and s.labels["route"] == "task:recon.run_job"
    ]
    assert {s.labels["table"] for s in task_queries} >= {"jobs"}
