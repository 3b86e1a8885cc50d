"""A job (live progress, cancel, summary), its results (filters, counterparts side by side,
paging) and their exports (CSV, XLSX)."""

from __future__ import annotations

from typing import Any

from flask import Response, make_response, request

from recon.auth.guard import current_actor, current_project, project_role
from recon.cache_keys import job_key
from recon.errors import Conflict
from recon.jobs.compare import differing_fields
from recon.jobs.models import Job
from recon.jobs.results_sql import Filters
from recon.jobs.schemas import ExportArgsSchema, ResultArgsSchema, result_filters
from recon.jobs.service import cancel_job, get_job
from recon.projects.models import ProjectRole
from recon.review.export import download, export_job
from recon.review.signoff import sign_off
from recon.review.state import get_current_results, job_state
from recon.sources.models import Source
from recon.sources.service import get_source
from recon.workspace.blueprint import bp
from recon.workspace.forms import load
from recon.workspace.render import STANDALONE, go, is_fragment, page
from recon.workspace.views.common import cache, session, storage

MATCH_LIMIT = 500  # records of one match shown side by side (a batched payout has dozens)


def _job(jid: int) -> Job:
    return get_job(session=session(), project=current_project(), job_id=jid)


def _sources(job: Job) -> tuple[Source, Source]:
    project = current_project()
    return (
        get_source(session=session(), project=project, source_id=job.left_source_id),
        get_source(session=session(), project=project, source_id=job.right_source_id),
    )


@bp.route("/projects/<id:pid>/jobs/<id:jid>", endpoint="job")
def job_page(pid: int, jid: int) -> Any:
    """A job: progress while it runs; when done, where the work stands (people's decisions
    applied), records and amounts per status and side, match rate per pass, duplicate keys."""
    return _job_page(jid)


def _job_page(jid: int, status: int = 200, **extra: Any) -> Any:
    job = _job(jid)
    left, right = _sources(job)
    # Only a finished job has a state: a running one's page must not wait on its writes.
    state = (
        job_state(session=session(), storage=storage(), job=job, cache=cache())
        if job.status.finished
        else None
    )
    return page(
        "workspace/job.html", status=status, job=job, left=left, right=right, state=state, **extra
    )


@bp.route("/projects/<id:pid>/jobs/<id:jid>/sign-off", methods=["POST"], endpoint="job_sign_off")
@project_role(ProjectRole.owner)
def signoff(pid: int, jid: int) -> Any:
    """Sign off a complete job (owners); the page names what is left when it is not."""
    try:
        sign_off(
            session=session(),
            storage=storage(),
            job=_job(jid),
            actor=current_actor(),
            cache=cache(),
        )
    except Conflict as error:
        return _job_page(jid, status=error.status, error=error)
    cache().delete(job_key(jid))  # the API serves finished jobs from the cache
    return _job_page(jid, signed=True)


@bp.route("/projects/<id:pid>/jobs/<id:jid>/progress", endpoint="job_progress")
def progress(pid: int, jid: int) -> Any:
    """The progress bar, polled by htmx; the whole page reloads once the job has finished."""
    job = _job(jid)
    body, status = page(STANDALONE, "workspace/_progress.html", job=job)
    response = make_response(body, status)
    if job.status.finished:
        response.headers["HX-Refresh"] = "true"
    return response


@bp.route("/projects/<id:pid>/jobs/<id:jid>/cancel", methods=["POST"], endpoint="job_cancel")
def cancel(pid: int, jid: int) -> Any:
    """Cancel a queued job, or stop a running one at its next pass."""
    cancel_job(session=session(), job=_job(jid), actor=current_actor())
    cache().delete(job_key(jid))  # the API serves finished jobs from the cache
    if is_fragment():
        response = make_response("", 200)
        response.headers["HX-Refresh"] = "true"
        return response
    return go("workspace.job", pid=pid, jid=jid)


@bp.route("/projects/<id:pid>/jobs/<id:jid>/results", endpoint="results")
def results(pid: int, jid: int) -> Any:
    """The job's records, filtered by status, pass, side, amount and text, a page at a time."""
    args = load(ResultArgsSchema(), request.args)
    job = _job(jid)
    left, right = _sources(job)
    found = get_current_results(
        session=session(),
        storage=storage(),
        job=job,
        view=args["view"],
        filters=result_filters(args),
        page=args["page"],
        per_page=args["per_page"],
        after=args["after"],
        cache=cache(),
    )
    passes = [p["name"] for p in job.rules.get("passes", [])] + ["break"]
    return page(
        "workspace/results.html",
        "workspace/_results_table.html",
        job=job,
        left=left,
        right=right,
        found=found,
        args=args,
        passes=passes,
        query={k: v for k, v in request.args.items() if k not in ("page", "after") and v},
        export_query=_export_query(),
    )


def _export_query() -> dict[str, str]:
    """The results page's filters as the export's arguments (its ``view`` is the export's
    ``state``: the export's own ``view`` says records, pairs or exceptions)."""
    query = {k: v for k, v in request.args.items() if k not in ("page", "after", "view") and v}
    if request.args.get("view"):
        query["state"] = request.args["view"]
    return query


@bp.route("/projects/<id:pid>/jobs/<id:jid>/matches/<id:mid>", endpoint="match")
def match(pid: int, jid: int, mid: int) -> Any:
    """The records of one match or break, left beside right, the fields that differ marked."""
    job = _job(jid)
    records = get_current_results(
        session=session(),
        storage=storage(),
        job=job,
        filters=Filters(match_id=mid),
        per_page=MATCH_LIMIT,
        cache=cache(),
    ).items
    sides = {s: [r for r in records if r["side"] == s] for s in ("left", "right")}
    differ = {
        side: [differing_fields(r, sides["right" if side == "left" else "left"]) for r in rows]
        for side, rows in sides.items()
    }
    return page(STANDALONE, "workspace/_match.html", job=job, sides=sides, differ=differ, mid=mid)


@bp.route("/projects/<id:pid>/jobs/<id:jid>/export.csv", endpoint="export")  # the old link
@bp.route("/projects/<id:pid>/jobs/<id:jid>/export", endpoint="export")
def export(pid: int, jid: int) -> Response:
    """Records, pairs or exceptions as CSV or XLSX, with the filters of the page that links
    here (the API's export, the same service)."""
    args = load(ExportArgsSchema(), request.args)
    exported = export_job(
        session=session(),
        storage=storage(),
        job=_job(jid),
        view=args["view"],
        fmt=args["format"],
        status=args["status"],
        current=args["state"] == "current",
        filters=result_filters(args),
        cache=cache(),
    )
    return download(exported)  # a job without results is a 409 page, not a broken download
