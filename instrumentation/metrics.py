"""The meter provider and every instrument recon exports, each declared once.

Nothing here runs at import: ``build_meter_provider`` and ``Metrics`` are called
from ``init_app`` so that each app (and each gunicorn worker, after fork) owns its
provider and its ``CollectorRegistry``.

Exported names are fixed by DESIGN.md section 10. The OTel Prometheus exporter
adds ``_total`` to counters and maps the unit ``s`` to a ``_seconds`` suffix
(it does not repeat a suffix the name already has), so counters are declared
without ``_total`` and histograms with their full ``..._seconds`` name. The
pool gauge ``reconciliation_db_pool_connections_total`` keeps its seed-mandated
name: gauges get no suffix, so it is exported as written.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from typing import Any

from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.metrics import CallbackOptions, Meter, MeterProvider, Observation
from opentelemetry.sdk.metrics import AlwaysOffExemplarFilter
from opentelemetry.sdk.metrics import MeterProvider as SDKMeterProvider
from opentelemetry.sdk.metrics.export import MetricReader
from opentelemetry.sdk.resources import Resource
from prometheus_client import CollectorRegistry

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

CACHE_LEVELS = frozenset({"l1", "l2"})
KEY_TYPES = frozenset({"project", "job", "user", "other"})


def build_meter_provider(
    registry: CollectorRegistry,
    *,
    extra_readers: Sequence[MetricReader] = (),
    service_name: str = "recon",
) -> SDKMeterProvider:
    """Return a MeterProvider whose Prometheus reader is bound to ``registry``."""
    reader = PrometheusMetricReader(
        # target_info and otel_scope_* labels add series nobody queries; DESIGN.md 10.
        disable_target_info=True,
        scope_info_enabled=False,
        registry=registry,
    )
    return SDKMeterProvider(
        metric_readers=[reader, *extra_readers],
        resource=Resource.create({"service.name": service_name}),
        # The Prometheus text format carries no exemplars; sampling them for
        # every measurement made each one about 40 % slower.
        exemplar_filter=AlwaysOffExemplarFilter(),
        # A pull reader has nothing to flush, and an atexit hook per provider
        # would keep every test app's provider alive until exit.
        shutdown_on_exit=False,
    )


class Metrics:
    """Every recon instrument, plus the small recording methods the hooks call."""

    def __init__(
        self,
        meter_provider: MeterProvider,
        *,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.meter_provider = meter_provider
        self.registry = registry
        # The exporter's collector is not safe under concurrent scrapes (both
        # scrapes may drain each other's snapshot and emit a family twice).
        self.scrape_lock = threading.Lock()
        self._pools: list[Any] = []
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


class CumulativeCounts:
    """Running totals per label values, read by an observable counter at collection.

    A synchronous ``Counter.add`` costs 8-17 us in the SDK (it validates, copies
    and hashes the attributes into a new Measurement every call); a dict update
    under a lock costs well under 1 us. The export is the same: an observable
    counter is a monotonic cumulative sum, a Prometheus counter with ``_total``,
    and the callback reports every total at every collection, so a scrape sees
    each increment made before it. Label values come from bounded sets (URL rules,
    methods, statuses, cache levels), so the dict stays small.
    """

    def __init__(self, keys: tuple[str, ...]) -> None:
        self.keys = keys
        self._lock = threading.Lock()
        self._totals: dict[tuple[str, ...], int] = {}

    def add(self, values: tuple[str, ...], amount: int = 1) -> None:
        with self._lock:
            self._totals[values] = self._totals.get(values, 0) + amount

    def observe(self, _options: CallbackOptions) -> Iterable[Observation]:
        with self._lock:
            totals = list(self._totals.items())
        keys = self.keys
        return [Observation(n, dict(zip(keys, values, strict=True))) for values, n in totals]
