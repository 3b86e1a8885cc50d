"""The Celery app, built with the Flask app (Flask's ``celery_init_app`` pattern).

Only ids travel in messages (JSON); tasks run inside the Flask app context.
The tasks are ``shared_task``s: they bind to this app, the default one, from the
module that defines them (recon.jobs.tasks calls ``celery_init_app``; this module
imports no task module, so the two never import each other).
Worker: ``flask --app wsgi worker`` or ``celery -A recon.celery_worker worker``.
"""

from __future__ import annotations

from typing import Any

from celery import Celery, Task
from celery.signals import worker_process_init, worker_ready
from flask import Flask

import instrumentation
from recon import heap


def celery_config(app: Flask) -> dict[str, Any]:
    time_limit = int(app.config["RECON_JOB_TIME_LIMIT"])
    return {
        "broker_url": app.config["RECON_REDIS_URL"],
        "task_ignore_result": True,
        # Results only for the parts of a partitioned job: a chord's reduce receives them.
        "result_backend": app.config["RECON_REDIS_URL"],
        "result_expires": 24 * 3600,
        "task_default_queue": app.config["RECON_JOB_QUEUE"],
        "task_serializer": "json",
        "accept_content": ["json"],
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "task_time_limit": time_limit + 60,
        "task_soft_time_limit": time_limit,
        # An unacknowledged job goes back to the queue this long after its worker died.
        "broker_transport_options": {
            "visibility_timeout": app.config["RECON_JOB_VISIBILITY_TIMEOUT"],
            # Look for messages of dead workers every 10 s (kombu's default: every 100 s),
            # so a lost part of a partitioned job is redelivered soon after its timeout.
            "unacked_restore_interval": 10,
            "unacked_restore_throttle": 1,
            # A worker killed during such a sweep holds its lock: let it lapse in a
            # minute rather than kombu's five.
            "unacked_mutex_expire": 60,
            # Deployments (and test runs) sharing one Redis must not share the queue's
            # keys: a worker's sweep restores every message in the unacked index older
            # than its own visibility timeout, whoever's it is.
            "global_keyprefix": app.config["RECON_CACHE_NAMESPACE"],
        },
        "broker_connection_timeout": 2,
        "broker_connection_retry_on_startup": True,
        # A POST must answer quickly when Redis is down: two quick tries, then 503.
        "task_publish_retry_policy": {
            "max_retries": 2,
            "interval_start": 0,
            "interval_step": 0.2,
            "interval_max": 0.5,
        },
        "worker_hijack_root_logger": False,
        # recon's JSON lines go to the real stdout: Celery's redirect would turn them into
        # log records of its own, which the root handler then drops as recursion.
        "worker_redirect_stdouts": False,
    }


def celery_init_app(app: Flask) -> Celery:
    class FlaskTask(Task):
        def __call__(self, *args: object, **kwargs: object) -> object:
            with app.app_context():
                return self.run(*args, **kwargs)

    celery = Celery(app.name, task_cls=FlaskTask)
    celery.config_from_object(celery_config(app))
    celery.set_default()
    app.extensions["celery"] = celery

    @worker_process_init.connect(weak=False)
    def _after_fork(**_: object) -> None:
        # A forked child must not share the parent's DB connections.
        from recon.extensions import db

        with app.app_context():
            db.engine.dispose(close=False)
        heap.freeze()  # the child has loaded everything a job runs

    @worker_ready.connect(weak=False)
    def _start_reaper(**_: object) -> None:
        # Every worker reaps too, so stale jobs are re-queued with no web process up.
        reaper = app.extensions.get("recon_reaper")
        if reaper is not None:
            reaper.start()

    # Task spans, and each worker process's own metrics on RECON_WORKER_METRICS_PORT.
    instrumentation.instrument_celery(celery, app)
    return celery
