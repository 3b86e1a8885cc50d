"""Celery: task spans, and each worker process's own metrics and listener.

``instrument_celery(celery, app)`` is called once where the Celery app is built.
It traces task publishing and running (opentelemetry-instrumentation-celery,
which carries the W3C trace context in the message headers, so a job's trace
goes on from the web request that posted it), and connects the worker signals:

* a worker started from the command line (``celery worker``, ``flask worker``)
  takes a provider of its own at ``worker_init``, named ``recon-worker``;
* each prefork pool child, which runs the tasks, takes its own again at
  ``worker_process_init`` (the inherited one counts and names its parent) and
  serves ``/metrics`` on ``RECON_WORKER_METRICS_PORT`` + its pool index (the
  port itself with the shipped ``--concurrency=1``); with the solo or threads
  pool the main process runs the tasks and serves it;
* at shutdown a process stops its listener and flushes its push exporters.

Workers embedded in a test process (``celery.contrib.testing``) keep the app's
telemetry as it is.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from celery import Celery, signals
from celery.apps.worker import Worker as CommandLineWorker
from celery.concurrency import get_implementation
from celery.concurrency.prefork import TaskPool as PreforkPool
from celery.utils.log import current_process_index
from flask import Flask
from opentelemetry.instrumentation.celery import CeleryInstrumentor
from opentelemetry.metrics import NoOpMeterProvider
from prometheus_client import CollectorRegistry

from instrumentation.listener import MetricsListener
from instrumentation.metrics import Metrics
from instrumentation.process import (
    WORKER,
    build_meter_provider,
    otlp_metric_exporters,
    process_resource,
)
from instrumentation.recorders import EXTENSION_KEY
from instrumentation.tracing import (
    TRACER_EXTENSION_KEY,
    AppTracerProvider,
    build_tracer_provider,
    replace_tracer_provider,
)
from instrumentation.view import UnauthorizedBody, default_unauthorized

log = logging.getLogger("recon.instrumentation")

WORKER_EXTENSION_KEY = "recon_worker_telemetry"
UNAUTHORIZED_EXTENSION_KEY = "recon_metrics_unauthorized"
PORT_SETTING = "RECON_WORKER_METRICS_PORT"


def instrument_celery(celery: Celery, app: Flask) -> WorkerTelemetry:
    """Trace ``celery``'s tasks and give its worker processes their own telemetry (idempotent)."""
    telemetry = app.extensions.get(WORKER_EXTENSION_KEY)
    if not isinstance(telemetry, WorkerTelemetry):
        telemetry = WorkerTelemetry(celery, app)
        app.extensions[WORKER_EXTENSION_KEY] = telemetry
    _trace_tasks(app)
    return telemetry


def _trace_tasks(app: Flask) -> None:
    # The instrumentor is one per process (Celery's signals are global); the
    # newest app built in the process is the one it reports to.
    instrumentor = CeleryInstrumentor()
    if instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.uninstrument()
    instrumentor.instrument(
        tracer_provider=AppTracerProvider(app),
        # Its flower.task.runtime.seconds would duplicate recon's job metrics.
        meter_provider=NoOpMeterProvider(),
    )


class WorkerTelemetry:
    """What one worker process owns: its providers (through the app) and its listener."""

    def __init__(self, celery: Celery, app: Flask) -> None:
        self.celery = celery
        self.app = app
        self.listener: MetricsListener | None = None
        # Set once this process took telemetry of its own: only then is it ours to stop.
        self.owned = False
        # Weak references to bound methods: the app keeps this object, and an app
        # that goes away (tests build many) takes its handlers with it.
        signals.worker_init.connect(self.on_worker_init)
        signals.worker_process_init.connect(self.on_process_init)
        signals.worker_process_shutdown.connect(self.on_process_shutdown)
        signals.worker_shutdown.connect(self.on_worker_shutdown)

    # -- signal handlers -----------------------------------------------------

    def on_worker_init(self, sender: Any = None, **_: Any) -> None:
        if not isinstance(sender, CommandLineWorker) or sender.app is not self.celery:
            return
        self.become_worker_process()
        if not issubclass(get_implementation(sender.pool_cls), PreforkPool):
            self.listen(index=0)

    def on_process_init(self, **_: Any) -> None:
        # The solo pool sends this signal too, in the worker's own process (handled
        # at worker_init, or an embedded worker): only a pool child has an index.
        index = current_process_index(base=0)
        if index is None:
            return
        self.become_worker_process()
        self.listen(index=index)

    def on_process_shutdown(self, **_: Any) -> None:
        if self.owned:
            self.stop()

    def on_worker_shutdown(self, sender: Any = None, **_: Any) -> None:
        if self.owned and getattr(sender, "app", None) is self.celery:
            self.stop()

    # -- what they do --------------------------------------------------------

    def become_worker_process(self) -> None:
        """Give this process its own resource, meter provider, registry and tracer provider."""
        self.owned = True
        resource = process_resource(WORKER)
        metrics = self.app.extensions.get(EXTENSION_KEY)
        if isinstance(metrics, Metrics):
            registry = CollectorRegistry()
            provider = build_meter_provider(
                registry, exporters=otlp_metric_exporters(), resource=resource
            )
            previous = metrics.rebind(provider, registry=registry)
            # Its counts are the parent's (or the web app's this process started as).
            retire = getattr(previous, "retire", None) or getattr(previous, "shutdown", None)
            if callable(retire):
                retire()
        if self.app.extensions.get(TRACER_EXTENSION_KEY) is not None:
            replace_tracer_provider(self.app, build_tracer_provider(resource))

    def listen(self, *, index: int) -> None:
        """Serve this process's metrics on the configured port + ``index`` (0 turns it off)."""
        metrics = self.app.extensions.get(EXTENSION_KEY)
        base = int(self.app.config.get(PORT_SETTING) or 0)
        if not isinstance(metrics, Metrics) or base == 0 or self.listener is not None:
            return
        host = os.environ.get("RECON_BIND_HOST", "127.0.0.1")
        unauthorized: UnauthorizedBody = self.app.extensions.get(
            UNAUTHORIZED_EXTENSION_KEY, default_unauthorized
        )
        try:
            self.listener = MetricsListener(
                metrics,
                host=host,
                port=base + index,
                token=self.app.config.get("RECON_METRICS_TOKEN") or None,
                unauthorized=unauthorized,
            ).start()
        except OSError as exc:
            # Jobs matter more than their metrics: run on, say so loudly.
            log.error("worker metrics could not listen on %s:%s: %s", host, base + index, exc)
            return
        log.info("worker metrics on http://%s:%s/metrics", host, self.listener.port)

    def stop(self) -> None:
        """Stop the listener and flush this process's push exporters.

        Explicitly: a prefork child leaves through ``os._exit``, past atexit hooks.
        """
        if self.listener is not None:
            self.listener.stop()
            self.listener = None
        metrics = self.app.extensions.get(EXTENSION_KEY)
        if isinstance(metrics, Metrics):
            metrics.shutdown()
        tracer_provider = self.app.extensions.get(TRACER_EXTENSION_KEY)
        shutdown = getattr(tracer_provider, "shutdown", None)
        if callable(shutdown):
            shutdown()
