from concurrent.futures import ThreadPoolExecutor

from recon import create_app
from recon.extensions import db
from recon.jobs.models import Job
from tests.conftest import AuthClient, Factory, app_config, migrate_schema
from tests.jobs.test_jobs_api import RULES


def test_concurrent_duplicates_create_one_job(tmp_path):
    app = create_app(app_config(tmp_path, f"sqlite:///{tmp_path / 'c.db'}"))
    migrate_schema(app)
    with app.app_context():
        factory = Factory(app)
        user = factory.user()
        project = factory.project(members={user: "owner"})
        left, right = factory.source(project, user), factory.source(project, user)
        token = factory.token(user)
        pid, body = (
            project.id,
            {"left_source_id": left.id, "right_source_id": right.id, "rules": RULES},
        )

    def post(_: int):
        with app.app_context():
            client = AuthClient(app.test_client(), None, token)
            return client.post(
                f"/api/projects/{pid}/jobs", json=body, headers={"Idempotency-Key": "same-key"}
            )

    with ThreadPoolExecutor(max_workers=4) as pool:
        responses = list(pool.map(post, range(4)))
    assert [r.status_code for r in responses] == [202] * 4
    assert len({r.get_json()["id"] for r in responses}) == 1
    assert sum(r.headers.get("Idempotent-Replayed") == "true" for r in responses) == 3
    with app.app_context():
        assert db.session.query(Job).count() == 1
