from __future__ import annotations

from typing import Any

from flask import Response, current_app, jsonify, stream_with_context, url_for
from flask.views import MethodView
from flask_smorest import Blueprint

from recon.auth.guard import current_actor, current_project
from recon.extensions import db
from recon.idempotency import idempotent
from recon.jobs.models import Job
from recon.jobs.results import ResultFilter, export_csv, get_results
from recon.jobs.rulesets import get_ruleset, get_rulesets, get_versions, save_ruleset
from recon.jobs.schemas import (
    ExportArgsSchema,
    JobCreateSchema,
    JobListArgsSchema,
    JobPageSchema,
    JobSchema,
    ResultArgsSchema,
    ResultPageSchema,
    RuleSetSaveSchema,
    RuleSetSchema,
)
from recon.jobs.service import cancel_job, create_job, get_job, get_jobs
from recon.sources.models import Source

blp = Blueprint(
    "jobs",
    __name__,
    url_prefix="/api/projects/<int:pid>",
    description="Reconciliation jobs, their results, and saved rule sets",
)


def _storage() -> Any:
    return current_app.extensions["recon_storage"]


def _job(jid: int) -> Job:
    return get_job(session=db.session, project=current_project(), job_id=jid)


def _sources(job: Job) -> tuple[Source, Source]:
    left, right = (
        db.session.get(Source, job.left_source_id),
        db.session.get(Source, job.right_source_id),
    )
    assert left is not None and right is not None  # the foreign keys keep them
    return left, right


@blp.route("/jobs")
class Jobs(MethodView):
    @blp.arguments(JobListArgsSchema, location="query")
    @blp.response(200, JobPageSchema)
    def get(self, args: dict[str, Any], pid: int) -> Any:
        """List the project's jobs, newest first."""
        return get_jobs(session=db.session, project=current_project(), **args)

    @idempotent
    @blp.arguments(JobCreateSchema)
    @blp.response(202, JobSchema)
    def post(self, data: dict[str, Any], pid: int) -> Any:
        """Start a reconciliation of two sources under rules (or a saved rule set).

        Answers 202 with the job and its Location; poll it until it has finished.
        409 while another job runs on the same sources; 503 when the queue is down.
        Honours Idempotency-Key.
        """
        job = create_job(
            session=db.session,
            project=current_project(),
            enqueue=current_app.extensions["recon_enqueue"],
            actor=current_actor(),
            **data,
        )
        job = _job(job.id)  # as it is now: the inline runner may have finished it
        location = url_for("jobs.JobById", pid=pid, jid=job.id)
        return job, 202, {"Location": location}


@blp.route("/jobs/<int:jid>")
class JobById(MethodView):
    @blp.response(200, JobSchema)
    def get(self, pid: int, jid: int) -> Any:
        """Status, progress (with the current pass), attempt, error and, when done, the summary."""
        # A finished job never changes again: its JSON is served from the cache.
        cached = current_app.extensions["recon_cache"].get(f"job:{jid}")
        if cached is not None and cached.get("project_id") == pid:
            return jsonify(cached)
        job = _job(jid)
        if job.status.finished:
            payload = JobSchema().dump(job)
            current_app.extensions["recon_cache"].set(f"job:{jid}", payload)
            return jsonify(payload)
        return job


@blp.route("/jobs/<int:jid>/cancel", methods=["POST"])
@blp.response(200, JobSchema)
def cancel(pid: int, jid: int) -> Any:
    """Cancel a queued job, or stop a running one at its next pass."""
    job = cancel_job(session=db.session, job=_job(jid), actor=current_actor())
    current_app.extensions["recon_cache"].delete(f"job:{jid}")
    return job


@blp.route("/jobs/<int:jid>/results", methods=["GET"])
@blp.arguments(ResultArgsSchema, location="query")
@blp.response(200, ResultPageSchema)
def results(args: dict[str, Any], pid: int, jid: int) -> Any:
    """Page through the job's results (read from its Parquet file), by side and row."""
    job = _job(jid)
    left, right = _sources(job)
    page, per_page = args.pop("page"), args.pop("per_page")
    return get_results(
        storage=_storage(),
        job=job,
        left=left,
        right=right,
        filters=ResultFilter(**args),
        page=page,
        per_page=per_page,
    )


@blp.route("/jobs/<int:jid>/export", methods=["GET"])
@blp.arguments(ExportArgsSchema, location="query")
@blp.response(200, {"format": "binary", "type": "string"}, content_type="text/csv")
def export(args: dict[str, Any], pid: int, jid: int) -> Response:
    """Stream the results as CSV with canonical and original columns (formula-safe)."""
    job = _job(jid)
    left, right = _sources(job)
    name = f"job-{jid}-{args['status'] or 'all'}.csv"
    args.pop("format")
    chunks = export_csv(
        storage=_storage(), job=job, left=left, right=right, filters=ResultFilter(**args)
    )
    return Response(
        stream_with_context(chunks),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@blp.route("/rulesets")
class RuleSets(MethodView):
    @blp.response(200, RuleSetSchema(many=True))
    def get(self, pid: int) -> Any:
        """The latest version of each saved rule set."""
        return get_rulesets(session=db.session, project=current_project())

    @blp.arguments(RuleSetSaveSchema)
    @blp.response(201, RuleSetSchema)
    def post(self, data: dict[str, Any], pid: int) -> Any:
        """Save rules under a name; saving an existing name adds a version."""
        return save_ruleset(
            session=db.session, project=current_project(), actor=current_actor(), **data
        )


@blp.route("/rulesets/<int:rid>", methods=["GET"])
@blp.response(200, RuleSetSchema)
def ruleset(pid: int, rid: int) -> Any:
    """One version of a rule set."""
    return get_ruleset(session=db.session, project=current_project(), ruleset_id=rid)


@blp.route("/rulesets/<int:rid>/versions", methods=["GET"])
@blp.response(200, RuleSetSchema(many=True))
def versions(pid: int, rid: int) -> Any:
    """Every version of this rule set's name, newest first."""
    found = get_ruleset(session=db.session, project=current_project(), ruleset_id=rid)
    return get_versions(session=db.session, project=current_project(), name=found.name)
