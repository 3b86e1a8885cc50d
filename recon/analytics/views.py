from __future__ import annotations

from typing import Any

from flask import current_app
from flask_smorest import Blueprint

from recon.analytics.schemas import AnalyticsSchema
from recon.analytics.service import get_analytics
from recon.auth.guard import current_project
from recon.extensions import db

blp = Blueprint(
    "analytics",
    __name__,
    url_prefix="/api/projects/<int:pid>/analytics",
    description="How well the project reconciles: jobs, exceptions, amounts",
)


@blp.route("", methods=["GET"])
@blp.response(200, AnalyticsSchema)
def analytics(pid: int) -> Any:
    """Match rates per job and pass, auto vs manual share, open exceptions by age and kind,
    unreconciled amounts per currency, job durations and volumes (cached; dropped on change)."""
    return get_analytics(
        session=db.session,
        storage=current_app.extensions["recon_storage"],
        project=current_project(),
        cache=current_app.extensions["recon_cache"],
        ttl=current_app.config["RECON_CACHE_TTL"],
    )
