from __future__ import annotations

from typing import Any

from flask import current_app
from flask_smorest import Blueprint

from recon.auth.guard import public
from recon.extensions import db
from recon.health.service import check_database, check_redis

blp = Blueprint("health", __name__, url_prefix="/api", description="Probes")


@blp.route("/health", methods=["GET"])
@blp.doc(security=[])
@public
def health() -> dict[str, str]:
    """Liveness: answers while the process runs; touches nothing."""
    return {"status": "ok"}


@blp.route("/ready", methods=["GET"])
@blp.doc(security=[])
@public
def ready() -> tuple[dict[str, Any], int, dict[str, str]]:
    """Readiness: 503 when the database does not answer; Redis trouble is reported, not fatal."""
    database = check_database(engine=db.engine)
    cache = check_redis(url=current_app.config["RECON_REDIS_URL"], timeout=0.5)
    ok = database["status"] == "ok"
    body = {"status": "ok" if ok else "unavailable", "database": database, "redis": cache}
    return body, (200 if ok else 503), ({} if ok else {"Retry-After": "5"})
