from __future__ import annotations

from typing import Any

from flask import Response, current_app, jsonify, url_for
from flask.views import MethodView
from flask_smorest import Blueprint

from recon.auth.guard import current_actor, current_project, project_role
from recon.cache_keys import job_key
from recon.extensions import db
from recon.idempotency import idempotent
from recon.jobs.models import Job
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
    result_filters,
)
from recon.jobs.service import cancel_job, create_job, get_job, get_jobs
from recon.projects.models import ProjectRole
from recon.review.export import documented_download, download, export_job
from recon.review.signoff import sign_off
from recon.review.state import get_current_results, job_state

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


def _cache() -> Any:
    return current_app.extensions["recon_cache"]


def _with_state(job: Job, payload: dict[str, Any]) -> Response:
    # Already serialised: returned as it is, not through the response schema again.
    state = job_state(session=db.session, storage=_storage(), job=job, cache=_cache())
    return jsonify({**payload, "state": state})


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
        """Status, progress (with the current pass), attempt, error and, when done, the
        engine's summary and the current ``state`` (people's decisions applied)."""
        job = _job(jid)
        if not job.status.finished:
            return job
        # The finished job's own JSON never changes again (sign-off drops it); its state
        # changes with every decision and is cached apart.
        payload = _cache().get(job_key(jid))
        if payload is None or payload.get("project_id") != pid:
            payload = JobSchema().dump(job)
            _cache().set(job_key(jid), payload)
        return _with_state(job, payload)


@blp.route("/jobs/<int:jid>/cancel", methods=["POST"])
@blp.response(200, JobSchema)
def cancel(pid: int, jid: int) -> Any:
    """Cancel a queued job, or stop a running one within seconds (its DuckDB statement is
    interrupted; the attempt's files are removed)."""
    revoke = current_app.extensions.get("recon_revoke")
    job = cancel_job(session=db.session, job=_job(jid), actor=current_actor(), revoke=revoke)
    _cache().delete(job_key(jid))
    return job


@blp.route("/jobs/<int:jid>/sign-off", methods=["POST"])
@project_role(ProjectRole.owner)
@blp.response(200, JobSchema)
def sign_off_view(pid: int, jid: int) -> Any:
    """Sign off a complete job (owners): 409 naming what is unexplained or pending otherwise.
    Afterwards every change to its exceptions, matches and approvals is 409 job_signed_off."""
    job = sign_off(
        session=db.session, storage=_storage(), job=_job(jid), actor=current_actor(), cache=_cache()
    )
    return _with_state(job, JobSchema().dump(job))


@blp.route("/jobs/<int:jid>/results", methods=["GET"])
@blp.arguments(ResultArgsSchema, location="query")
@blp.response(200, ResultPageSchema)
def results(args: dict[str, Any], pid: int, jid: int) -> Any:
    """Page through the job's records in their current state (``view=engine``: the engine's
    answer), by side and row; filter by status, side, pass, match, key, description text
    and amount range. Pass ``next`` back as ``after`` for the next page (any depth)."""
    return get_current_results(
        session=db.session,
        storage=_storage(),
        job=_job(jid),
        view=args["view"],
        filters=result_filters(args),
        page=args["page"],
        per_page=args["per_page"],
        after=args["after"],
        cache=_cache(),
    )


@blp.route("/jobs/<int:jid>/export", methods=["GET"])
@blp.arguments(ExportArgsSchema, location="query")
@documented_download(blp)
def export(args: dict[str, Any], pid: int, jid: int) -> Response:
    """Stream the job as CSV or XLSX (formula-safe): ``view=records`` (one row per record,
    current state, the sources' own columns), ``pairs`` (one row per match or break, the
    two sides and their difference) or ``exceptions`` (status, assignee, reason, note, age).
    """
    exported = export_job(
        session=db.session,
        storage=_storage(),
        job=_job(jid),
        view=args["view"],
        fmt=args["format"],
        status=args["status"],
        current=args["state"] == "current",
        filters=result_filters(args),
        cache=_cache(),
    )
    return download(exported)


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
