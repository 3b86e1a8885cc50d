from recon import create_app
from recon.extensions import db
from recon.jobs.models import Job, JobStatus
from tests.conftest import AuthClient, Factory, app_config, migrate_schema
from tests.jobs.test_jobs_api import RULES


def test_redis_down_answers_503_and_leaves_no_queued_job(tmp_path):
    app = create_app(
        app_config(
            tmp_path,
            f"sqlite:///{tmp_path / 'q.db'}",
            RECON_REDIS_URL="redis://127.0.0.1:1/0",
            RECON_JOB_RUNNER="auto",
        )
    )
    migrate_schema(app)
    with app.app_context():
        factory = Factory(app)
        user = factory.user()
        project = factory.project(members={user: "owner"})
        left, right = factory.source(project, user), factory.source(project, user)
        client = AuthClient(app.test_client(), user, factory.token(user))
        response = client.post(
            f"/api/projects/{project.id}/jobs",
            json={"left_source_id": left.id, "right_source_id": right.id, "rules": RULES},
        )
        assert response.status_code == 503
        assert response.get_json()["code"] == "queue_unavailable"
        assert int(response.headers["Retry-After"]) > 0
        jobs = db.session.query(Job).all()
        assert [(j.status, j.error.startswith("could not be queued")) for j in jobs] == [
            (JobStatus.failed, True)
        ]
        # Everything else still answers without Redis.
        assert client.get(f"/api/projects/{project.id}").status_code == 200
    app.extensions["recon_cache"].close()
