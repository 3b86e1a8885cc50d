"""Settings from ``RECON_*`` environment variables, parsed once and checked at start-up.

Every variable is listed in ``SETTINGS`` with its type and default; the README's
configuration table is the same list. A bad value stops the app with a message
that names the variable (``ConfigError``). Tests pass overrides as a dict.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class ConfigError(ValueError):
    """A setting has a value the app can not run with."""


_DURATION = re.compile(r"^\s*(\d+)\s*([smhd]?)\s*$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def _duration(raw: str) -> int:
    match = _DURATION.match(raw)
    if not match:
        raise ValueError("expected seconds or a number with s/m/h/d, e.g. 12h")
    return int(match.group(1)) * _UNITS[match.group(2)]


def _positive_int(raw: str) -> int:
    value = int(raw)
    if value <= 0:
        raise ValueError("must be a positive integer")
    return value


def _partitions(raw: str) -> int:
    value = int(raw)
    if not 0 <= value <= 256:
        raise ValueError("must be between 0 and 256")
    return value


def _port(raw: str) -> int:
    value = int(raw)
    if not 0 <= value <= 65535:
        raise ValueError("must be a TCP port (0 turns it off)")
    return value


def _csv(raw: str) -> list[str]:
    return [part.strip() for part in raw.split(",") if part.strip()]


def _url(schemes: tuple[str, ...]) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        if not raw.startswith(schemes):
            raise ValueError("expected a URL starting with " + " or ".join(schemes))
        return raw

    return parse


def _log_level(raw: str) -> str:
    level = raw.upper()
    if level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
        raise ValueError("expected DEBUG, INFO, WARNING or ERROR")
    return level


def _memory(raw: str) -> str:
    if not re.match(r"^\s*\d+(\.\d+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)\s*$", raw, re.I):
        raise ValueError("expected a size such as 512MB or 4GB")
    return raw.strip()


def _choice(*allowed: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        if raw not in allowed:
            raise ValueError("expected one of " + ", ".join(allowed))
        return raw

    return parse


JOB_STEPS = ("claim", "engine", "publish", "audit", "commit", "invalidation")


def _fault(raw: str) -> str:
    step, _, kind = raw.strip().partition(":")
    if step not in JOB_STEPS or kind not in ("", "transient"):
        raise ValueError("expected a step (" + ", ".join(JOB_STEPS) + "), optionally :transient")
    return raw.strip()


# What one candidate pair is taken to cost the engine: two row ids, two amounts, a date
# difference and a score, about 8 bytes each, rounded up. An estimate, not a measurement
# (README, limits): the default candidate limit keeps a pass's candidates within the
# engine's memory limit instead of letting one rule spill gigabytes for minutes.
BYTES_PER_CANDIDATE = 64
_SIZE_UNITS = {"kb": 1000, "mb": 1000**2, "gb": 1000**3, "tb": 1000**4}
_SIZE_UNITS.update({"kib": 1024, "mib": 1024**2, "gib": 1024**3, "tib": 1024**4})


def memory_bytes(size: str) -> int:
    """The bytes of a memory size as DuckDB reads it (``1GB`` is 1000^3, ``1GiB`` 1024^3)."""
    match = re.match(r"^\s*(\d+(?:\.\d+)?)\s*([a-z]+)\s*$", size, re.I)
    if not match:
        raise ValueError(f"not a memory size: {size!r}")
    return int(float(match.group(1)) * _SIZE_UNITS[match.group(2).lower()])


def default_max_candidates(memory_limit: str) -> int:
    """The candidate pairs that fit in ``memory_limit``."""
    return memory_bytes(memory_limit) // BYTES_PER_CANDIDATE


def _optional(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    return lambda raw: parse(raw) if raw.strip() else None


@dataclass(frozen=True)
class Setting:
    name: str
    parse: Callable[[str], Any]
    default: str | None
    help: str


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "RECON_DATABASE_URL",
        _url(("sqlite", "postgresql")),
        "sqlite:///{var}/recon.db",
        "SQLAlchemy URL; PostgreSQL as postgresql+psycopg://user@host/db",
    ),
    Setting(
        "RECON_DATA_DIR",
        str,
        "{var}/data",
        "where uploaded sources and job results live as Parquet",
    ),
    Setting(
        "RECON_REDIS_URL",
        _optional(_url(("redis://", "rediss://", "unix://"))),
        "",
        "Redis for the L2 cache, rate limits and the Celery broker; empty = none",
    ),
    Setting("RECON_TOKEN_TTL", _duration, "12h", "bearer token lifetime (seconds or 30m/12h/7d)"),
    Setting(
        "RECON_ADMIN_USERNAME", str, "admin", "admin created at start-up on an empty users table"
    ),
    Setting(
        "RECON_ADMIN_PASSWORD",
        _optional(str),
        "",
        "password of that admin; without it no admin is created at start-up",
    ),
    Setting(
        "RECON_CORS_ORIGINS", _csv, "", "comma-separated origins allowed by CORS; empty = none"
    ),
    Setting("RECON_LOGIN_RATE_LIMIT", str, "10/minute", "per-IP limit on POST /api/auth/login"),
    Setting("RECON_LOCKOUT_THRESHOLD", _positive_int, "5", "failed logins that lock an account"),
    Setting(
        "RECON_LOCKOUT_SECONDS",
        _positive_int,
        "60",
        "first lock length; doubles with each further lock",
    ),
    Setting("RECON_MAX_UPLOAD_MB", _positive_int, "512", "largest upload accepted (413 above)"),
    Setting(
        "RECON_MAX_JSON_KB",
        _positive_int,
        "1024",
        "largest body of any other request (413 above, before it is parsed)",
    ),
    Setting(
        "RECON_METRICS_TOKEN",
        _optional(str),
        "",
        "bearer token required by /api/metrics; empty = open",
    ),
    Setting(
        "RECON_WORKER_METRICS_PORT",
        _port,
        "9464",
        "port of a Celery worker's /metrics (pool child n: port + n); 0 = none",
    ),
    Setting("RECON_LOG_LEVEL", _log_level, "INFO", "DEBUG, INFO, WARNING or ERROR"),
    Setting("RECON_DB_POOL_SIZE", _positive_int, "5", "PostgreSQL connection pool size"),
    Setting(
        "RECON_DB_TIMEOUT",
        _positive_int,
        "3",
        "seconds to wait for a DB connection (and the readiness ping)",
    ),
    Setting("RECON_CACHE_TTL", _positive_int, "60", "seconds an entry lives in the cache"),
    Setting("RECON_CACHE_L1_SIZE", _positive_int, "10000", "entries in the in-process cache"),
    Setting(
        "RECON_CACHE_NAMESPACE",
        str,
        "",
        "prefix of the cache's and the job queue's keys and of partitioned jobs' task ids in "
        "Redis, for deployments sharing one Redis",
    ),
    Setting(
        "RECON_ENGINE_MEMORY_LIMIT",
        _memory,
        "1GB",
        "DuckDB memory limit per job; larger jobs spill to RECON_DATA_DIR/tmp",
    ),
    Setting(
        "RECON_MAX_CANDIDATES",
        _optional(_positive_int),
        "",
        "candidate pairs a rule pass may generate before the job fails; "
        "empty = the engine memory limit / 64 bytes (15,625,000 at 1GB)",
    ),
    Setting("RECON_JOB_THREADS", _positive_int, "2", "jobs run at once by the in-process runner"),
    Setting(
        "RECON_PARTITION_ROWS",
        _positive_int,
        "5000000",
        "on Celery, a job with more records than this on a side runs in partitions (a chord)",
    ),
    Setting(
        "RECON_JOB_PARTITIONS",
        _partitions,
        "0",
        "partitions of such a job; 0 = one per RECON_PARTITION_ROWS records of the bigger "
        "side (2 to 64)",
    ),
    Setting(
        "RECON_JOB_TIME_LIMIT",
        _duration,
        "1h",
        "time limit of one job attempt (the worker kills it 60 s later)",
    ),
    Setting(
        "RECON_JOB_RUNNER",
        _choice("auto", "celery", "thread", "inline"),
        "auto",
        "auto = Celery when RECON_REDIS_URL is set, else threads in the web process",
    ),
    Setting(
        "RECON_JOB_VISIBILITY_TIMEOUT",
        _positive_int,
        "3900",
        "seconds before a job whose worker died is delivered again (above the time limit)",
    ),
    Setting(
        "RECON_JOB_PAUSE_AFTER_CLAIM",
        float,
        "0",
        "seconds a job waits after its claim: fault injection for drills and tests",
    ),
    Setting(
        "RECON_JOB_PAUSE_IN_PART",
        float,
        "0",
        "seconds each partition of a job waits before it runs: fault injection for drills",
    ),
    Setting(
        "RECON_JOB_QUEUE",
        str,
        "celery",
        "Celery queue jobs are sent to (and re-queued on); deployments sharing a Redis use "
        "one each",
    ),
    Setting(
        "RECON_JOB_STALE_SECONDS",
        _positive_int,
        "60",
        "a running job without a heartbeat for this long is re-queued (Celery) or failed",
    ),
    Setting(
        "RECON_JOB_FAULT",
        _optional(_fault),
        "",
        "test and drill knob, off when empty: make every job fail at step (claim, engine, "
        "publish, audit, commit, invalidation; add :transient for a database outage)",
    ),
    Setting(
        "RECON_SECRET_KEY",
        _optional(str),
        "",
        "signs the workspace's CSRF tokens; empty = random per process (set it with several pods)",
    ),
    Setting(
        "RECON_COOKIE_SECURE",
        _choice("auto", "true", "false"),
        "auto",
        "Secure flag of the workspace cookies; auto = when the request came over HTTPS",
    ),
    Setting(
        "RECON_PROXY_HOPS",
        int,
        "0",
        "trusted reverse proxies in front (X-Forwarded-For), e.g. 1 behind an ingress",
    ),
)


def load(
    env: Mapping[str, str] | None = None, overrides: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Return the typed settings from ``env`` (default os.environ) with ``overrides`` on top."""
    env = os.environ if env is None else env
    overrides = dict(overrides or {})
    values: dict[str, Any] = {}
    for setting in SETTINGS:
        if setting.name in overrides:
            values[setting.name] = overrides.pop(setting.name)
            continue
        raw = env.get(setting.name)
        if raw is None and setting.default is not None:
            # The embedded default keeps its files in ./var of the directory it runs from.
            raw = setting.default.replace("{var}", str(Path.cwd() / "var"))
        try:
            values[setting.name] = setting.parse(raw if raw is not None else "")
        except ValueError as exc:
            raise ConfigError(f"{setting.name}={raw!r} is invalid: {exc}") from None
    values.update(overrides)
    if values.get("RECON_MAX_CANDIDATES") is None:
        values["RECON_MAX_CANDIDATES"] = default_max_candidates(values["RECON_ENGINE_MEMORY_LIMIT"])
    return values
