"""`make run` loads the demo through `flask demo`: a project with real results to explore."""

from recon.extensions import db
from recon.jobs.models import Job, JobStatus
from recon.projects.models import Project
from recon.review.models import ReconException
from recon.users.models import Role


def test_demo_loads_a_finished_job_with_every_kind_of_case(app, factory):
    factory.user("demo-admin", role=Role.admin)
    runner = app.test_cli_runner()
    result = runner.invoke(args=["demo"])
    assert result.exit_code == 0, result.output
    assert "succeeded" in result.output
    project = db.session.query(Project).filter_by(name="Bank vs ledger (demo)").one()
    job = db.session.query(Job).filter_by(project_id=project.id).one()
    assert job.status == JobStatus.succeeded and job.ruleset_version == 1
    passes = {p["name"]: p["matches"] for p in job.summary["passes"]}
    assert passes["exact"] > 2000 and passes["tolerant"] > 100
    assert passes["batched"] == 4  # the four weekly card payouts
    assert passes["amount_date"] > 0  # suggestions for references the bank dropped
    kinds = {k for (k,) in db.session.query(ReconException.kind).filter_by(job_id=job.id)}
    assert {k.value for k in kinds} == {"break", "unmatched", "suggested"}
    # Loading again changes nothing.
    again = runner.invoke(args=["demo"])
    assert again.exit_code == 0 and "already loaded" in again.output
    assert db.session.query(Job).filter_by(project_id=project.id).count() == 1
