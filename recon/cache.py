"""Two-level cache: an in-process TTL LRU (L1) in front of Redis (L2).

``CacheService.get/set/delete/get_or_set``; values are JSON-serialisable and
both levels hold the JSON text, so a caller can never mutate a cached copy.
A get counts a hit or miss at ``l1`` and, on an L1 miss with Redis
configured, a hit or miss at ``l2``. ``delete`` (and ``set``) drop the key
from both levels and publish it on a Redis channel; every process listens on
that channel from a thread started lazily (again after a fork) and drops its
L1 copy, so a write is seen by the next request on any process.

Redis calls have short socket timeouts and sit behind a circuit breaker: with
Redis down the service answers from L1 and the loader, and each L2 operation
that fails or is skipped by the open breaker counts
``reconciliation_cache_errors_total{cache_level="l2"}``. A delete that could
not reach Redis is retried once Redis answers again, and the listener clears
L1 whenever it (re)subscribes, since it may have missed invalidations.

``None`` is not cached: ``get`` returns None for a miss, and ``get_or_set``
calls the loader again next time when it returned None.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

import redis
from cachetools import TLRUCache
from flask import Flask
from redis.backoff import NoBackoff
from redis.retry import Retry

log = logging.getLogger(__name__)

T = TypeVar("T")
EXTENSION_KEY = "recon_cache"
DEFAULT_CHANNEL = "recon:cache:invalidate"
_KEY_TYPES = {"project": "project", "job": "job", "user": "user", "token": "user"}
_MAX_PENDING_DELETES = 10_000


class CacheMetrics(Protocol):
    def cache_hit(self, level: str, key_type: str) -> None: ...
    def cache_miss(self, level: str, key_type: str) -> None: ...
    def cache_error(self, level: str) -> None: ...


class NullCacheMetrics:
    """Records nothing: for a CacheService used without instrumentation."""

    def cache_hit(self, level: str, key_type: str) -> None:
        return None

    def cache_miss(self, level: str, key_type: str) -> None:
        return None

    def cache_error(self, level: str) -> None:
        return None


def key_type(key: str) -> str:
    """Return the metric key type of ``key``: project, job, user or other."""
    prefix, sep, _ = key.partition(":")
    return _KEY_TYPES.get(prefix, "other") if sep else "other"


class CircuitBreaker:
    """Closed until ``threshold`` consecutive failures, then open for ``cooldown``
    seconds, then half-open: one trial call closes it again or re-opens it."""

    def __init__(
        self, *, threshold: int, cooldown: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.threshold = threshold
        self.cooldown = cooldown
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None
        self._trial_running = False
        self._lock = threading.Lock()

    @property
    def is_open(self) -> bool:
        return self._opened_at is not None

    def allow(self) -> bool:
        with self._lock:
            if self._opened_at is None:
                return True
            if self._trial_running or self._clock() - self._opened_at < self.cooldown:
                return False
            self._trial_running = True
            return True

    def success(self) -> None:
        with self._lock:
            self._failures = 0
            self._opened_at = None
            self._trial_running = False

    def failure(self) -> None:
        with self._lock:
            self._failures += 1
            self._trial_running = False
            if self._opened_at is not None or self._failures >= self.threshold:
                self._opened_at = self._clock()


class _L2Unavailable(Exception):
    """Redis failed or the breaker is open; the caller falls back to L1/loader."""


class CacheService:
    """L1 + L2 cache with cross-process L1 invalidation (see the module docstring)."""

    def __init__(
        self,
        redis_url: str | None,
        *,
        metrics: CacheMetrics | None = None,
        ttl: float = 60,
        l1_size: int = 10_000,
        channel: str = DEFAULT_CHANNEL,
        socket_timeout: float = 0.1,
        breaker_threshold: int = 3,
        breaker_cooldown: float = 5.0,
        namespace: str = "",
    ) -> None:
        self.ttl = ttl
        # Apps that share a Redis but not a database (test runs side by side) keep apart:
        # their keys and their invalidation channel carry the namespace.
        self.namespace = namespace
        self.channel = namespace + channel
        self._metrics: CacheMetrics = metrics or NullCacheMetrics()
        self._lock = threading.Lock()
        # TLRU: LRU eviction plus a per-entry expiry, so set(..., ttl=) is honoured.
        self._l1: TLRUCache[str, tuple[float, str]] = TLRUCache(
            maxsize=l1_size, ttu=lambda _key, value, _now: value[0], timer=time.monotonic
        )
        self._origin = uuid.uuid4().hex
        self._breaker = CircuitBreaker(threshold=breaker_threshold, cooldown=breaker_cooldown)
        self._pending_deletes: set[str] = set()
        self._socket_timeout = socket_timeout
        self._redis_url = redis_url
        self._redis: redis.Redis | None = None
        if redis_url:
            self._redis = redis.Redis.from_url(
                redis_url,
                socket_timeout=socket_timeout,
                socket_connect_timeout=socket_timeout,
                # The breaker decides when to try again; redis-py's own retries
                # would multiply the time a request waits on a dead Redis.
                retry=Retry(NoBackoff(), 0),
                health_check_interval=0,
            )
        self._listener_pid: int | None = None
        self._listener_stop = threading.Event()
        self._listener_lock = threading.Lock()
        self.subscribed = threading.Event()

    @property
    def l2_enabled(self) -> bool:
        return self._redis is not None

    # -- public API ----------------------------------------------------------

    def get(self, key: str) -> Any:
        """Return the cached value for ``key``, or None when neither level has it."""
        self._ensure_process()
        kind = key_type(key)
        raw = self._l1_get(key)
        if raw is not None:
            self._metrics.cache_hit("l1", kind)
            return json.loads(raw)
        self._metrics.cache_miss("l1", kind)
        if self._redis is None:
            return None
        try:
            stored = self.namespace + key
            raw, ttl_ms = self._l2(
                lambda r: r.pipeline(transaction=False).get(stored).pttl(stored).execute()
            )
        except _L2Unavailable:
            return None
        if raw is None:
            self._metrics.cache_miss("l2", kind)
            return None
        self._metrics.cache_hit("l2", kind)
        text = raw.decode() if isinstance(raw, bytes) else str(raw)
        # Keep the L1 copy no longer than Redis keeps the key.
        remaining = ttl_ms / 1000 if isinstance(ttl_ms, int) and ttl_ms > 0 else self.ttl
        self._l1_set(key, text, min(self.ttl, remaining))
        return json.loads(text)

    def set(self, key: str, value: Any, ttl: float | None = None) -> None:
        """Store ``value`` in both levels and make other processes drop their L1 copy."""
        self._ensure_process()
        self._store(key, value, ttl, publish=True)

    def delete(self, key: str) -> None:
        """Remove ``key`` from both levels in every process."""
        self._ensure_process()
        with self._lock:
            self._l1.pop(key, None)
        if self._redis is None:
            return
        try:
            self._l2(
                lambda r: (
                    r.pipeline(transaction=False)
                    .delete(self.namespace + key)
                    .publish(self.channel, self._message(key))
                    .execute()
                )
            )
        except _L2Unavailable:
            with self._lock:
                if len(self._pending_deletes) < _MAX_PENDING_DELETES:
                    self._pending_deletes.add(key)

    def get_or_set(self, key: str, loader: Callable[[], T], ttl: float | None = None) -> T:
        """Return the cached value, or call ``loader``, cache its result and return it."""
        cached = self.get(key)
        if cached is not None:
            return cached
        value = loader()
        if value is not None:
            # No publish: nobody else can hold a copy of a key we just missed on.
            self._store(key, value, ttl, publish=False)
        return value

    def clear_local(self) -> None:
        """Drop every L1 entry of this process."""
        with self._lock:
            self._l1.clear()

    def close(self) -> None:
        """Stop the invalidation listener and close the Redis connections."""
        self._listener_stop.set()
        if self._redis is not None:
            self._redis.close()

    # -- levels --------------------------------------------------------------

    def _l1_get(self, key: str) -> str | None:
        with self._lock:
            entry = self._l1.get(key)
        return entry[1] if entry is not None else None

    def _l1_set(self, key: str, text: str, ttl: float) -> None:
        with self._lock:
            self._l1[key] = (time.monotonic() + ttl, text)

    def _store(self, key: str, value: Any, ttl: float | None, *, publish: bool) -> None:
        text = json.dumps(value, separators=(",", ":"))
        seconds = self.ttl if ttl is None else ttl
        self._l1_set(key, text, seconds)
        if self._redis is None:
            return
        px = max(1, int(seconds * 1000))

        def write(r: redis.Redis) -> Any:
            pipe = r.pipeline(transaction=False).set(self.namespace + key, text, px=px)
            if publish:
                pipe.publish(self.channel, self._message(key))
            return pipe.execute()

        try:
            self._l2(write)
        except _L2Unavailable:
            return

    def _l2(self, call: Callable[[redis.Redis], Any]) -> Any:
        """Run ``call`` against Redis behind the breaker; raise _L2Unavailable on failure."""
        assert self._redis is not None  # noqa: S101 - callers check l2_enabled first
        if not self._breaker.allow():
            self._metrics.cache_error("l2")
            raise _L2Unavailable
        try:
            result = call(self._redis)
        except (redis.RedisError, OSError) as exc:
            self._breaker.failure()
            self._metrics.cache_error("l2")
            log.debug("cache L2 call failed: %s", exc)
            raise _L2Unavailable from exc
        self._breaker.success()
        if self._pending_deletes:
            self._flush_pending_deletes()
        return result

    def _flush_pending_deletes(self) -> None:
        with self._lock:
            keys, self._pending_deletes = self._pending_deletes, set()
        if not keys or self._redis is None:
            return
        try:
            pipe = self._redis.pipeline(transaction=False)
            for key in keys:
                pipe.delete(self.namespace + key)
                pipe.publish(self.channel, self._message(key))
            pipe.execute()
        except (redis.RedisError, OSError):
            with self._lock:
                self._pending_deletes |= keys

    # -- invalidation listener ----------------------------------------------

    def _message(self, key: str) -> str:
        return json.dumps({"o": self._origin, "k": key})

    def _ensure_process(self) -> None:
        """Start the listener in this process; after a fork, also forget the parent's L1."""
        if self._redis is None:
            return
        pid = os.getpid()
        if self._listener_pid == pid:
            return
        with self._listener_lock:
            if self._listener_pid == pid:
                return
            if self._listener_pid is not None:
                self.clear_local()
            self._listener_pid = pid
            self._listener_stop = threading.Event()
            self.subscribed = threading.Event()
            thread = threading.Thread(
                target=self._listen,
                args=(self._listener_stop, self.subscribed),
                name="recon-cache-invalidation",
                daemon=True,
            )
            thread.start()
        # Wait briefly so that entries cached from now on are covered by the
        # subscription; a dead Redis costs at most this once per process.
        self.subscribed.wait(self._socket_timeout * 5)

    def _listen(self, stop: threading.Event, subscribed: threading.Event) -> None:
        assert self._redis_url is not None  # noqa: S101 - only started with Redis configured
        client = redis.Redis.from_url(
            self._redis_url,
            socket_connect_timeout=self._socket_timeout,
            socket_timeout=5,
            retry=Retry(NoBackoff(), 0),
        )
        backoff = 0.1
        while not stop.is_set():
            pubsub = client.pubsub(ignore_subscribe_messages=True)
            try:
                pubsub.subscribe(self.channel)
                # Invalidations may have been missed while unsubscribed.
                self.clear_local()
                subscribed.set()
                backoff = 0.1
                while not stop.is_set():
                    message = pubsub.get_message(timeout=1.0)
                    if message is not None and message.get("type") == "message":
                        self._on_message(message.get("data"))
            except (redis.RedisError, OSError) as exc:
                subscribed.set()  # don't keep callers waiting on a dead Redis
                log.debug("cache invalidation listener lost Redis: %s", exc)
                stop.wait(backoff)
                backoff = min(backoff * 2, 5.0)
            finally:
                pubsub.close()
        client.close()

    def _on_message(self, data: Any) -> None:
        try:
            payload = json.loads(data)
            origin, key = payload["o"], payload["k"]
        except (TypeError, ValueError, KeyError):
            return
        if origin != self._origin:
            with self._lock:
                self._l1.pop(key, None)


class AppCacheMetrics:
    """Resolves the app's Metrics at record time, so init order does not matter."""

    def __init__(self, app: Flask) -> None:
        self._app = app

    def _target(self) -> CacheMetrics | None:
        metrics: CacheMetrics | None = self._app.extensions.get("recon_metrics")
        return metrics

    def cache_hit(self, level: str, key_type: str) -> None:
        if (target := self._target()) is not None:
            target.cache_hit(level, key_type)

    def cache_miss(self, level: str, key_type: str) -> None:
        if (target := self._target()) is not None:
            target.cache_miss(level, key_type)

    def cache_error(self, level: str) -> None:
        if (target := self._target()) is not None:
            target.cache_error(level)


def init_app(app: Flask) -> CacheService:
    """Create the app's CacheService from its config at ``app.extensions["recon_cache"]``."""
    existing = app.extensions.get(EXTENSION_KEY)
    if isinstance(existing, CacheService):
        return existing
    service = CacheService(
        app.config.get("RECON_REDIS_URL") or None,
        metrics=AppCacheMetrics(app),
        ttl=float(app.config.get("RECON_CACHE_TTL", 60)),
        l1_size=int(app.config.get("RECON_CACHE_L1_SIZE", 10_000)),
        namespace=str(app.config.get("RECON_CACHE_NAMESPACE", "")),
    )
    app.extensions[EXTENSION_KEY] = service
    return service
