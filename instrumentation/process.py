"""Who this process is to a collector, its meter provider, and the OTLP export it adds.

Every process (a gunicorn worker, a Celery worker's main process and each of
its pool children) gets a ``service.instance.id`` of its own, a random UUID:
a collector that receives cumulative counters from several processes of one
pod keeps one series per instance, so adding them up is exact. recon sets the
id itself, over any ``OTEL_RESOURCE_ATTRIBUTES`` value, because an id shared
by the processes of a pod would merge their counters. ``service.name`` is the
process's role (``recon-web``, ``recon-worker``) unless ``OTEL_SERVICE_NAME``
or ``OTEL_RESOURCE_ATTRIBUTES`` names one.

``OTEL_METRICS_EXPORTER`` (the SDK's own variable, a comma-separated list)
adds a periodic OTLP/HTTP exporter when it names ``otlp``; recon's Prometheus
reader is always there. The exporter sends to
``OTEL_EXPORTER_OTLP_METRICS_ENDPOINT`` or ``OTEL_EXPORTER_OTLP_ENDPOINT``
(+ ``/v1/metrics``) every ``OTEL_METRIC_EXPORT_INTERVAL`` ms (60000).
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Sequence
from typing import Any

from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics import AlwaysOffExemplarFilter
from opentelemetry.sdk.metrics import MeterProvider as SDKMeterProvider
from opentelemetry.sdk.metrics.export import (
    MetricExporter,
    MetricExportResult,
    MetricReader,
    MetricsData,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import SERVICE_INSTANCE_ID, SERVICE_NAME, Resource
from prometheus_client import CollectorRegistry

log = logging.getLogger("recon.instrumentation")

WEB = "recon-web"
WORKER = "recon-worker"
METRICS_EXPORTER_VARIABLE = "OTEL_METRICS_EXPORTER"
# What OTEL_METRICS_EXPORTER may name here: the Prometheus reader is always on.
_KNOWN_EXPORTERS = frozenset({"otlp", "prometheus", "none"})


def process_resource(role: str) -> Resource:
    """Return this process's resource: ``service.name`` and a new ``service.instance.id``."""
    resource = Resource.create({SERVICE_INSTANCE_ID: str(uuid.uuid4()), "process.pid": os.getpid()})
    # Resource.create names a service nobody configured "unknown_service...".
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: role}))
    return resource


def otlp_metrics_configured() -> bool:
    """Whether ``OTEL_METRICS_EXPORTER`` asks for OTLP (unknown names are logged, not fatal)."""
    names = {
        part.strip().lower()
        for part in os.environ.get(METRICS_EXPORTER_VARIABLE, "").split(",")
        if part.strip()
    }
    unknown = names - _KNOWN_EXPORTERS
    if unknown:
        log.warning(
            "%s names %s; recon supports otlp (OTLP/HTTP) beside its Prometheus reader",
            METRICS_EXPORTER_VARIABLE,
            ", ".join(sorted(unknown)),
        )
    return "otlp" in names


def otlp_metric_exporters() -> Sequence[ProcessBoundExporter]:
    """Return the OTLP/HTTP metric exporter when configured, else nothing."""
    if not otlp_metrics_configured():
        return ()
    # Imported here: the exporter pulls in protobuf, only worth it when used.
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

    return (ProcessBoundExporter(OTLPMetricExporter()),)


def periodic_readers(exporters: Sequence[MetricExporter]) -> list[MetricReader]:
    """Return a periodic reader (``OTEL_METRIC_EXPORT_INTERVAL``) for each exporter."""
    return [PeriodicExportingMetricReader(exporter) for exporter in exporters]


class ProcessBoundExporter(MetricExporter):
    """Exports only from the process that built it, and only until it is retired.

    The SDK restarts a periodic reader's thread in a forked child, so a Celery
    pool child would go on exporting the parent's counters under the parent's
    ``service.instance.id`` (and once more when it shuts the copy down): the
    copy stays silent, and the child builds its own (``Metrics.rebind``). A
    process that takes a new identity (a Celery worker's main process, built as
    a web app) retires its first exporter, so the old identity sends no last
    export either.
    """

    def __init__(self, exporter: MetricExporter) -> None:
        super().__init__(
            # The reader asks its exporter for these; the wrapped one decided them
            # from OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE.
            preferred_temporality=exporter._preferred_temporality,
            preferred_aggregation=exporter._preferred_aggregation,
        )
        self.exporter = exporter
        self.pid = os.getpid()
        self.retired = False

    def retire(self) -> None:
        """Send nothing more, not even the last export of a shutdown."""
        self.retired = True

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> MetricExportResult:
        if self.retired or os.getpid() != self.pid:
            return MetricExportResult.SUCCESS
        return self.exporter.export(metrics_data, timeout_millis=timeout_millis, **kwargs)

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return os.getpid() != self.pid or self.exporter.force_flush(timeout_millis)

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        if os.getpid() == self.pid:
            self.exporter.shutdown(timeout_millis=timeout_millis, **kwargs)


class ProcessMeterProvider(SDKMeterProvider):
    """A MeterProvider that knows its push exporters, so that it can be retired quietly."""

    def __init__(self, *, exporters: Sequence[ProcessBoundExporter] = (), **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.exporters = tuple(exporters)

    def retire(self) -> None:
        """Shut down without a last export: this process goes on under another identity."""
        for exporter in self.exporters:
            exporter.retire()
        self.shutdown()


def build_meter_provider(
    registry: CollectorRegistry,
    *,
    exporters: Sequence[ProcessBoundExporter] = (),
    extra_readers: Sequence[MetricReader] = (),
    resource: Resource | None = None,
) -> ProcessMeterProvider:
    """Return a MeterProvider whose Prometheus reader is bound to ``registry``.

    Each of ``exporters`` gets a periodic reader beside it (the OTLP route).
    """
    reader = PrometheusMetricReader(
        # target_info and otel_scope_* labels add series nobody queries; DESIGN.md 10.
        disable_target_info=True,
        scope_info_enabled=False,
        registry=registry,
    )
    pushing = [*periodic_readers(exporters), *extra_readers]
    return ProcessMeterProvider(
        exporters=exporters,
        metric_readers=[reader, *pushing],
        resource=resource or Resource.create({}),
        # The Prometheus text format carries no exemplars; sampling them for
        # every measurement made each one about 40 % slower.
        exemplar_filter=AlwaysOffExemplarFilter(),
        # A pull reader has nothing to flush, and an atexit hook per provider
        # would keep every test app's provider alive until exit; a push reader
        # sends its last counts when the process exits.
        shutdown_on_exit=bool(pushing),
    )
