"""Analytics as charts and the project's audit log."""

from __future__ import annotations

from typing import Any

from flask import Response, current_app, request

from recon.analytics.service import get_analytics
from recon.audit.schemas import AuditArgsSchema, AuditExportArgsSchema
from recon.audit.service import get_events
from recon.auth.guard import current_project
from recon.review.list_exports import download_list, export_audit
from recon.workspace import charts
from recon.workspace.blueprint import bp
from recon.workspace.forms import load
from recon.workspace.render import page
from recon.workspace.views.common import cache, session, storage


@bp.route("/projects/<id:pid>/analytics", endpoint="analytics")
def analytics(pid: int) -> Any:
    """Match rate per job over time, open exceptions by age, unreconciled per currency."""
    data = get_analytics(
        session=session(),
        storage=storage(),
        project=current_project(),
        cache=cache(),
        ttl=current_app.config["RECON_CACHE_TTL"],
    )
    return page(
        "workspace/analytics.html",
        data=data,
        rate_chart=charts.match_rates(data["jobs"]),
        age_chart=charts.bars(data["open_exceptions"]["by_age"], unit="exceptions"),
        money_chart=charts.amounts(data["unreconciled"]),
    )


@bp.route("/projects/<id:pid>/audit", endpoint="audit")
def audit(pid: int) -> Any:
    """Every change in the project, newest first, filtered by object and action."""
    args = load(AuditArgsSchema(), request.args)
    events = get_events(session=session(), project_id=current_project().id, **args)
    return page(
        "workspace/audit.html",
        "workspace/_audit_table.html",
        events=events,
        args=args,
        query={k: v for k, v in request.args.items() if k != "page" and v},
    )


@bp.route("/projects/<id:pid>/audit/export", endpoint="audit_export")
def audit_export(pid: int) -> Response:
    """The audit log as CSV or XLSX, every page, with the page's filters (the API's export)."""
    args = load(AuditExportArgsSchema(), request.args)
    return download_list(
        export_audit, session=session(), storage=storage(), project=current_project(), args=args
    )
