"""CacheService against a real Redis: both levels, invalidation across processes'
caches, and a dead Redis that must not take the cache (or the app) down."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from prometheus_client import CollectorRegistry

from instrumentation import Metrics, build_meter_provider
from recon.cache import CacheService, CircuitBreaker, key_type

CLOSED_PORT_URL = "redis://127.0.0.1:1/0"


class Counted:
    """Real Metrics on a private registry, read back the way Prometheus would."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.metrics = Metrics(build_meter_provider(self.registry), registry=self.registry)

    def hits(self, level: str, kind: str) -> float:
        labels = {"cache_level": level, "key_type": kind}
        return self.registry.get_sample_value("reconciliation_cache_hits_total", labels) or 0.0

    def misses(self, level: str, kind: str) -> float:
        labels = {"cache_level": level, "key_type": kind}
        return self.registry.get_sample_value("reconciliation_cache_misses_total", labels) or 0.0

    def errors(self) -> float:
        labels = {"cache_level": "l2"}
        return self.registry.get_sample_value("reconciliation_cache_errors_total", labels) or 0.0


@pytest.fixture
def counted() -> Counted:
    return Counted()


@pytest.fixture
def make_cache(redis_url: str) -> Iterator[Callable[..., CacheService]]:
    """CacheServices on the test Redis, on a channel of their own, closed afterwards."""
    channel = f"test:cache:{uuid.uuid4().hex}"
    made: list[CacheService] = []

    def make(**kw: Any) -> CacheService:
        service = CacheService(kw.pop("url", redis_url), channel=channel, **kw)
        made.append(service)
        return service

    yield make
    for service in made:
        service.close()


def key(prefix: str) -> str:
    return f"{prefix}:{uuid.uuid4().hex}"


def wait_for(predicate: Callable[[], bool], timeout: float = 3.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("project:1", "project"),
        ("job:9", "job"),
        ("user:3", "user"),
        ("token:ab", "user"),
        ("stats:x", "other"),
        ("projectless", "other"),
    ],
)
def test_key_type_comes_from_the_prefix(name: str, kind: str) -> None:
    assert key_type(name) == kind


@pytest.mark.redis
def test_l1_hit_l2_hit_and_miss_are_counted_per_level(
    make_cache: Callable[..., CacheService], counted: Counted
) -> None:
    writer = make_cache()
    reader = make_cache(metrics=counted.metrics)
    k = key("project")
    writer.set(k, {"id": 7, "name": "Bank vs ledger"})

    assert reader.get(k) == {"id": 7, "name": "Bank vs ledger"}  # L1 miss, L2 hit
    assert (counted.misses("l1", "project"), counted.hits("l2", "project")) == (1, 1)
    assert reader.get(k) == {"id": 7, "name": "Bank vs ledger"}  # now from L1
    assert counted.hits("l1", "project") == 1
    assert counted.hits("l2", "project") == 1

    assert reader.get(key("job")) is None  # in neither level
    assert (counted.misses("l1", "job"), counted.misses("l2", "job")) == (1, 1)


@pytest.mark.redis
def test_get_or_set_loads_once_then_serves_from_cache(
    make_cache: Callable[..., CacheService], counted: Counted
) -> None:
    cache = make_cache(metrics=counted.metrics)
    calls: list[int] = []

    def loader() -> dict[str, int]:
        calls.append(1)
        return {"user": 5}

    k = key("token")
    assert cache.get_or_set(k, loader) == {"user": 5}
    assert cache.get_or_set(k, loader) == {"user": 5}
    assert len(calls) == 1
    assert counted.hits("l1", "user") == 1
    # A second process finds it in Redis without calling its loader.
    other = make_cache()
    assert other.get_or_set(k, loader) == {"user": 5}
    assert len(calls) == 1


@pytest.mark.redis
def test_entries_expire_with_their_ttl(make_cache: Callable[..., CacheService]) -> None:
    cache = make_cache()
    k = key("job")
    cache.set(k, {"status": "running"}, ttl=0.2)
    assert cache.get(k) == {"status": "running"}
    time.sleep(0.3)
    assert cache.get(k) is None


@pytest.mark.redis
def test_delete_in_one_process_drops_the_l1_copy_in_another(
    make_cache: Callable[..., CacheService], counted: Counted
) -> None:
    web_a = make_cache()
    web_b = make_cache(metrics=counted.metrics)
    k = key("project")
    web_a.set(k, {"name": "old"})
    assert web_b.get(k) == {"name": "old"}  # B now holds an L1 copy
    assert web_b.get(k) == {"name": "old"}
    assert counted.hits("l1", "project") == 1

    web_a.delete(k)  # a write through A's services
    assert wait_for(lambda: web_b.get(k) is None), "B still serves its stale L1 copy"

    web_a.set(k, {"name": "new"})
    assert wait_for(lambda: web_b.get(k) == {"name": "new"})


@pytest.mark.redis
def test_namespaces_keep_apps_sharing_a_redis_apart(
    make_cache: Callable[..., CacheService],
) -> None:
    one, other = make_cache(namespace="one:"), make_cache(namespace="other:")
    also_one = make_cache(namespace="one:")
    k = key("job")
    one.set(k, {"from": "one"})
    assert other.get(k) is None  # the other deployment never sees it
    assert also_one.get(k) == {"from": "one"}  # the same deployment does
    other.set(k, {"from": "other"})
    assert wait_for(lambda: also_one.get(k) == {"from": "one"})
    one.delete(k)
    assert wait_for(lambda: also_one.get(k) is None)
    assert other.get(k) == {"from": "other"}


@pytest.mark.redis
def test_unreachable_redis_still_answers_and_counts_errors(
    make_cache: Callable[..., CacheService], counted: Counted
) -> None:
    cache = make_cache(url=CLOSED_PORT_URL, metrics=counted.metrics, breaker_cooldown=60)
    calls: list[int] = []
    k = key("user")
    started = time.monotonic()
    assert cache.get_or_set(k, lambda: calls.append(1) or {"id": 1}) == {"id": 1}
    assert cache.get_or_set(k, lambda: calls.append(1) or {"id": 1}) == {"id": 1}
    cache.delete(k)
    assert cache.get_or_set(k, lambda: calls.append(1) or {"id": 2}) == {"id": 2}
    for _ in range(20):
        assert cache.get(k) == {"id": 2}  # from L1
    assert time.monotonic() - started < 2.0
    assert calls == [1, 1]
    assert counted.errors() >= 3
    assert counted.hits("l1", "user") >= 21


def test_breaker_opens_after_failures_then_half_opens() -> None:
    now = [0.0]
    breaker = CircuitBreaker(threshold=3, cooldown=5.0, clock=lambda: now[0])
    for _ in range(2):
        assert breaker.allow()
        breaker.failure()
    assert breaker.allow()
    breaker.failure()
    assert not breaker.allow()  # open
    now[0] = 4.9
    assert not breaker.allow()
    now[0] = 5.0
    assert breaker.allow()  # half-open: one trial
    assert not breaker.allow()
    breaker.failure()  # trial failed: open again for a full cooldown
    now[0] = 9.9
    assert not breaker.allow()
    now[0] = 10.0
    assert breaker.allow()
    breaker.success()
    assert breaker.allow() and breaker.allow()


def test_endpoints_answer_with_redis_down_and_count_l2_errors(
    app: Flask, client: FlaskClient, factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from recon.cache import AppCacheMetrics

    dead = CacheService(CLOSED_PORT_URL, metrics=AppCacheMetrics(app), breaker_threshold=2)
    monkeypatch.setitem(app.extensions, "recon_cache", dead)
    user = factory.user()
    token = factory.token(user)
    registry = app.extensions["recon_metrics"].registry
    labels = {"cache_level": "l2"}
    before = registry.get_sample_value("reconciliation_cache_errors_total", labels) or 0.0
    try:
        for _ in range(3):
            response = client.get("/api/auth/me", headers={"Authorization": f"Bearer {token}"})
            assert response.status_code == 200
            assert response.get_json()["username"] == user.username
    finally:
        dead.close()
    after = registry.get_sample_value("reconciliation_cache_errors_total", labels) or 0.0
    assert after - before >= 1
