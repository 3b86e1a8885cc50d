"""gunicorn settings for recon: ``gunicorn -c ops/gunicorn.conf.py wsgi:app``.

One worker process with threads. recon's metrics live in the worker's memory
(OpenTelemetry's Prometheus reader is exact only within one process,
opentelemetry-python#3747), so with one process every scrape of /api/metrics
sees every request; capacity comes from more pods (the HPA), not more workers.
More workers per pod (``--workers N``) are exact only through an OpenTelemetry
collector: with ``OTEL_METRICS_EXPORTER=otlp`` each worker pushes its metrics
under its own ``service.instance.id`` and the collector adds them up.
The app is loaded in the worker, after the fork (no ``preload_app``), so the
meter provider, the DB pool and the Redis connections are the worker's own.

Environment:
    PORT              port to listen on (default 8000)
    RECON_BIND_HOST   address to listen on (default 127.0.0.1; containers set 0.0.0.0)
    GUNICORN_WORKERS  worker processes (default 1; more only with OTEL_METRICS_EXPORTER=otlp
                      for exact metrics, see above)
    GUNICORN_THREADS  threads in each worker (default 8)
    GUNICORN_TIMEOUT  seconds before a silent worker is restarted (default 60)
"""

from __future__ import annotations

import os
from typing import Any

bind = [f"{os.environ.get('RECON_BIND_HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}"]
workers = int(os.environ.get("GUNICORN_WORKERS", "1"))
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "8"))
preload_app = False
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "60"))
graceful_timeout = 30
keepalive = 5
# The app writes one JSON log line per request itself.
accesslog = None
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
# No max_requests: a recycled worker would restart every counter.
max_requests = 0
# gunicorn 23+ opens a control socket under $HOME, which is read-only in the image.
control_socket_disable = True
# The heartbeat file on a tmpfs, so a slow disk does not get the worker killed.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None  # noqa: S108

MULTI_WORKER_WARNING = (
    "gunicorn is running %d worker processes: recon's metrics are per process, so each "
    "scrape of /api/metrics sees only the worker that answered it and counters will "
    "jump between workers. Run one worker per pod (the default in ops/gunicorn.conf.py) "
    "and scale with more pods, or send metrics to an OpenTelemetry collector "
    "(OTEL_METRICS_EXPORTER=otlp), which adds up the workers exactly."
)


def _warn_of_workers(cfg: Any) -> bool:
    # Through a collector the workers add up; a scrape of one still sees one.
    pushing = "otlp" in os.environ.get("OTEL_METRICS_EXPORTER", "").lower()
    return bool(cfg.workers > 1 and not pushing)


def when_ready(server: Any) -> None:
    if _warn_of_workers(server.cfg):
        server.log.warning(MULTI_WORKER_WARNING, server.cfg.workers)


def post_worker_init(worker: Any) -> None:
    from recon import heap

    # The app is loaded by now (no preload: this runs in the worker, after the
    # import): freeze its long-lived objects, or every full collection traverses
    # them (50-100 ms pauses in the p99 of requests and scrapes, uploads of XML
    # statements at half speed).
    heap.freeze()
    # Also in the app's own (JSON) log stream, where operators look first.
    if _warn_of_workers(worker.cfg):
        import logging

        logging.getLogger("recon.instrumentation").warning(MULTI_WORKER_WARNING, worker.cfg.workers)
