"""Every instrument recon exports, each declared once.

Nothing here runs at import: ``Metrics`` is built by ``init_app`` on a provider
from ``instrumentation.process.build_meter_provider``, so that each app (and
each gunicorn worker, after fork) owns its provider and its
``CollectorRegistry``; a Celery pool child, forked after the app was built,
declares them again on its own provider (``Metrics.rebind``).

Exported names are fixed by DESIGN.md section 10. The OTel Prometheus exporter
adds ``_total`` to counters and maps the unit ``s`` to a ``_seconds`` suffix
(it does not repeat a suffix the name already has), so counters are declared
without ``_total`` and histograms with their full ``..._seconds`` name. The
pool gauge ``reconciliation_db_pool_connections_total`` keeps its seed-mandated
name: gauges get no suffix, so it is exported as written.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from opentelemetry.metrics import CallbackOptions, Meter, MeterProvider, Observation
from prometheus_client import CollectorRegistry

from instrumentation.counts import CumulativeCounts

METER_NAME = "recon.instrumentation"
METER_VERSION = "0.1.0"

# Request and query latencies: 1 ms to 10 s, roughly 1-2.5-5 per decade.
SECONDS_BUCKETS: tuple[float, ...] = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
# Reconciliation jobs run for seconds to an hour; 1 ms buckets would waste series.
# The engine's share of a job and a job's wait for a worker use the same buckets.
JOB_SECONDS_BUCKETS: tuple[float, ...] = (
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    120.0,
    300.0,
    600.0,
    1800.0,
    3600.0,
)
# A job normally waits well under a second for an idle worker; a backlog, minutes.
QUEUE_WAIT_BUCKETS: tuple[float, ...] = (0.1, 0.25, *JOB_SECONDS_BUCKETS)

CACHE_LEVELS = frozenset({"l1", "l2"})
KEY_TYPES = frozenset({"project", "job", "user", "other"})


@dataclass(frozen=True)
class Backlog:
    """Jobs waiting for a worker and running now, as the app's hook reads them."""

    queued: int
    running: int
    oldest_queued_seconds: float  # 0 when nothing is queued


BacklogReader = Callable[[], "Backlog | None"]
# Both backlog gauges are collected within milliseconds: one reading serves both.
_BACKLOG_TTL = 1.0


class Metrics:
    """Every recon instrument, plus the small recording methods the hooks call."""

    def __init__(
        self,
        meter_provider: MeterProvider,
        *,
        registry: CollectorRegistry | None = None,
        backlog: BacklogReader | None = None,
    ) -> None:
        # The exporter's collector is not safe under concurrent scrapes (both
        # scrapes may drain each other's snapshot and emit a family twice).
        self.scrape_lock = threading.Lock()
        self._pools: list[Any] = []
        self._declare(meter_provider, registry, backlog)

    def rebind(
        self,
        meter_provider: MeterProvider,
        *,
        registry: CollectorRegistry | None,
        backlog: BacklogReader | None = None,
    ) -> MeterProvider:
        """Declare every instrument again on ``meter_provider``; return the provider it replaces.

        For a process forked after the app was built (a Celery pool child): the
        inherited provider carries the parent's counts and resource. Everything
        that records holds this object, not its instruments, so all of it moves
        to the new provider; the pools observed so far stay observed.
        """
        previous = self.meter_provider
        self._declare(meter_provider, registry, backlog)
        return previous

    def shutdown(self) -> None:
        """Flush and stop this process's provider (its push readers send their last counts)."""
        shutdown = getattr(self.meter_provider, "shutdown", None)
        if callable(shutdown):
            shutdown()

    def _declare(
        self,
        meter_provider: MeterProvider,
        registry: CollectorRegistry | None,
        backlog: BacklogReader | None,
    ) -> None:
        self.meter_provider = meter_provider
        self.registry = registry
        self._backlog = backlog
        self._backlog_reading: tuple[float, Backlog | None] = (float("-inf"), None)
        # Attribute dicts reused per label values: the histograms see the same few
        # hundred combinations over and over. The SDK copies what it keeps.
        self._query_attributes: dict[tuple[str, str, str], dict[str, str]] = {}
        self._duration_attributes: dict[tuple[str, str], dict[str, str]] = {}
        meter: Meter = meter_provider.get_meter(METER_NAME, METER_VERSION)
        self.meter = meter

        self.db_query_duration = meter.create_histogram(
            "reconciliation_db_query_duration_seconds",
            unit="s",
            description="Duration of SQL statements and timed service calls.",
            explicit_bucket_boundaries_advisory=SECONDS_BUCKETS,
        )
        # The three counters bumped on nearly every request are counted in
        # process and observed at collection (see CumulativeCounts).
        self._cache_hits = CumulativeCounts(("cache_level", "key_type"))
        self.cache_hits = meter.create_observable_counter(
            "reconciliation_cache_hits",
            callbacks=[self._cache_hits.observe],
            unit="{hit}",
            description="Cache hits by level and key type.",
        )
        self._cache_misses = CumulativeCounts(("cache_level", "key_type"))
        self.cache_misses = meter.create_observable_counter(
            "reconciliation_cache_misses",
            callbacks=[self._cache_misses.observe],
            unit="{miss}",
            description="Cache misses by level and key type.",
        )
        self.cache_errors = meter.create_counter(
            "reconciliation_cache_errors",
            unit="{error}",
            description="Cache operations that failed or were skipped by the circuit breaker.",
        )
        self._http_requests = CumulativeCounts(("method", "route", "status"))
        self.http_requests = meter.create_observable_counter(
            "reconciliation_http_requests",
            callbacks=[self._http_requests.observe],
            unit="{request}",
            description="HTTP requests by method, URL rule and status.",
        )
        self.http_duration = meter.create_histogram(
            "reconciliation_http_request_duration_seconds",
            unit="s",
            description="HTTP request duration by method and URL rule.",
            explicit_bucket_boundaries_advisory=SECONDS_BUCKETS,
        )
        self.auth_attempts = meter.create_counter(
            "reconciliation_auth_attempts",
            unit="{attempt}",
            description="Login attempts by outcome (success, failure, locked).",
        )
        self.authz_denied = meter.create_counter(
            "reconciliation_authz_denied",
            unit="{request}",
            description="Requests denied by authorisation, by reason.",
        )
        self.rate_limited = meter.create_counter(
            "reconciliation_rate_limited",
            unit="{request}",
            description="Requests answered 429 by the rate limiter.",
        )
        self.upload_rejected = meter.create_counter(
            "reconciliation_upload_rejected",
            unit="{upload}",
            description="Uploads rejected, by reason.",
        )
        self.jobs = meter.create_counter(
            "reconciliation_jobs", unit="{job}", description="Finished jobs by final status."
        )
        self.job_errors = meter.create_counter(
            "reconciliation_job_errors",
            unit="{error}",
            description="Exceptions that ended or retried a job attempt, by pipeline step.",
        )
        self.job_duration = meter.create_histogram(
            "reconciliation_job_duration_seconds",
            unit="s",
            description="Wall time of reconciliation jobs.",
            explicit_bucket_boundaries_advisory=JOB_SECONDS_BUCKETS,
        )
        self.records_processed = meter.create_counter(
            "reconciliation_records_processed",
            unit="{record}",
            description="Records read by reconciliation jobs, by side.",
        )
        self.job_queue_wait = meter.create_histogram(
            "reconciliation_job_queue_wait_seconds",
            unit="s",
            description="Time from a job's creation to its first claim by a worker.",
            explicit_bucket_boundaries_advisory=QUEUE_WAIT_BUCKETS,
        )
        self.engine_duration = meter.create_histogram(
            "reconciliation_engine_duration_seconds",
            unit="s",
            description="Time the matching engine took for a job (the job's other steps aside).",
            explicit_bucket_boundaries_advisory=JOB_SECONDS_BUCKETS,
        )
        if backlog is not None:
            meter.create_observable_gauge(
                "reconciliation_jobs_backlog",
                callbacks=[self._observe_backlog],
                unit="{job}",
                description="Jobs queued and running now, read from the database at "
                "collection (every web process reports the same figure: aggregate with max).",
            )
            meter.create_observable_gauge(
                "reconciliation_jobs_oldest_queued_age_seconds",
                callbacks=[self._observe_oldest_queued],
                unit="s",
                description="Age of the oldest job still waiting for a worker (0 when none).",
            )
        meter.create_observable_gauge(
            "reconciliation_db_pool_connections_active",
            callbacks=[self._observe_active],
            unit="{connection}",
            description="Connections checked out of the pool.",
        )
        meter.create_observable_gauge(
            "reconciliation_db_pool_connections_idle",
            callbacks=[self._observe_idle],
            unit="{connection}",
            description="Connections idle in the pool.",
        )
        meter.create_observable_gauge(
            "reconciliation_db_pool_connections_total",
            callbacks=[self._observe_total],
            unit="{connection}",
            description="Connections held by the pool (active + idle).",
        )

    # -- pool gauges ---------------------------------------------------------

    def observe_engine(self, engine: Any) -> None:
        """Report ``engine``'s pool in the pool gauges (once per engine)."""
        if all(known is not engine for known in self._pools):
            self._pools.append(engine)

    def _pool_counts(self) -> tuple[int, int]:
        active = idle = 0
        for engine in self._pools:
            # engine.pool is read each time: dispose() swaps in a new pool.
            pool = engine.pool
            # NullPool, StaticPool and SingletonThreadPool keep no counts.
            checkedout = getattr(pool, "checkedout", None)
            checkedin = getattr(pool, "checkedin", None)
            active += int(checkedout()) if callable(checkedout) else 0
            idle += int(checkedin()) if callable(checkedin) else 0
        return active, idle

    def _observe_active(self, _options: CallbackOptions) -> Iterable[Observation]:
        if self._pools:
            yield Observation(self._pool_counts()[0])

    def _observe_idle(self, _options: CallbackOptions) -> Iterable[Observation]:
        if self._pools:
            yield Observation(self._pool_counts()[1])

    def _observe_total(self, _options: CallbackOptions) -> Iterable[Observation]:
        if self._pools:
            yield Observation(sum(self._pool_counts()))

    # -- job backlog ---------------------------------------------------------

    def _read_backlog(self, *, fresh: bool) -> Backlog | None:
        # The SDK runs a provider's callbacks in the order the instruments were
        # declared, one collection at a time: the backlog gauge reads, the age
        # gauge right after it reuses that reading (unless it is somehow stale).
        read_at, reading = self._backlog_reading
        now = time.monotonic()
        if (fresh or now - read_at > _BACKLOG_TTL) and self._backlog is not None:
            reading = self._backlog()
            self._backlog_reading = (now, reading)
        return reading

    def _observe_backlog(self, _options: CallbackOptions) -> Iterable[Observation]:
        reading = self._read_backlog(fresh=True)
        if reading is not None:
            yield Observation(reading.queued, {"status": "queued"})
            yield Observation(reading.running, {"status": "running"})

    def _observe_oldest_queued(self, _options: CallbackOptions) -> Iterable[Observation]:
        reading = self._read_backlog(fresh=False)
        if reading is not None:
            yield Observation(reading.oldest_queued_seconds)

    # -- recording -----------------------------------------------------------

    def record_query(self, route: str, operation: str, table: str, seconds: float) -> None:
        key = (route, operation, table)
        attributes = self._query_attributes.get(key)
        if attributes is None:
            attributes = self._query_attributes.setdefault(
                key, {"route": route, "operation": operation, "table": table}
            )
        self.db_query_duration.record(seconds, attributes)

    def record_request(self, method: str, route: str, status: int, seconds: float) -> None:
        self._http_requests.add((method, route, str(status)))
        key = (method, route)
        attributes = self._duration_attributes.get(key)
        if attributes is None:
            attributes = self._duration_attributes.setdefault(
                key, {"method": method, "route": route}
            )
        self.http_duration.record(seconds, attributes)

    def cache_hit(self, level: str, key_type: str) -> None:
        self._cache_hits.add((level, key_type))

    def cache_miss(self, level: str, key_type: str) -> None:
        self._cache_misses.add((level, key_type))

    def cache_error(self, level: str) -> None:
        self.cache_errors.add(1, {"cache_level": level})
