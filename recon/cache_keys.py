"""The cache keys that more than one domain reads or drops, spelled once.

The prefix decides the key type the cache metrics report (``job:``, ``project:``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, TypeVar

T = TypeVar("T")


class Cache(Protocol):
    """What services need of ``recon.cache.CacheService``."""

    def get(self, key: str) -> Any: ...
    def set(self, key: str, value: Any, ttl: float | None = None) -> None: ...
    def delete(self, key: str) -> None: ...
    def get_or_set(self, key: str, loader: Callable[[], T], ttl: float | None = None) -> T: ...


def job_key(job_id: int) -> str:
    """A finished job's JSON (it never changes again)."""
    return f"job:{job_id}"


def job_state_key(job_id: int) -> str:
    """A job's current state (changes with every decision on its sources pair)."""
    return f"job:{job_id}:state"


def job_decisions_key(job_id: int) -> str:
    """The people's decisions that apply to a job's records (changes with every decision),
    by column (the key's name changed with the shape: a pod of the previous release
    reads and writes ``decisions``, a list of records)."""
    return f"job:{job_id}:decision-columns"


def analytics_key(project_id: int) -> str:
    """A project's analytics."""
    return f"project:{project_id}:analytics"
