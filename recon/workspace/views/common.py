"""What every workspace view shares: the session, the cache, the caller, the project."""

from __future__ import annotations

from typing import Any

from flask import current_app

from recon.extensions import db


def session() -> Any:
    return db.session


def cache() -> Any:
    return current_app.extensions["recon_cache"]


def storage() -> Any:
    return current_app.extensions["recon_storage"]


def max_upload_bytes() -> int:
    return int(current_app.config["RECON_MAX_UPLOAD_MB"]) * 1024 * 1024
