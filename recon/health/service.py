"""Readiness: can this process serve? The DB must answer; Redis is optional."""

from __future__ import annotations

from typing import Any

import redis
from sqlalchemy.engine import Engine


def check_database(*, engine: Engine) -> dict[str, Any]:
    """Return ``{"status": "ok"}`` or ``{"status": "down", "error": ...}`` for a ``SELECT 1``."""
    try:
        # A bare DBAPI cursor: no transaction (SQLite's begins take the write lock).
        conn = engine.raw_connection()
        try:
            cursor = conn.cursor()
            cursor.execute("SELECT 1")
            cursor.close()
        finally:
            conn.close()
    except Exception as exc:  # any failure means not ready; the reason goes in the body
        return {"status": "down", "error": type(exc).__name__}
    return {"status": "ok"}


def check_redis(*, url: str | None, timeout: float) -> dict[str, Any]:
    """Return the Redis state; ``degraded`` never fails readiness, the app works without it."""
    if not url:
        return {"status": "not_configured"}
    client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
    try:
        client.ping()
    except redis.RedisError as exc:
        return {"status": "degraded", "error": type(exc).__name__}
    finally:
        client.close()
    return {"status": "ok"}
