"""A loaded process's long-lived objects, frozen out of the cyclic collector's reach.

A recon process holds 150-200k long-lived objects once it has imported what it
runs (modules, SQLAlchemy's metadata, the OTel pipeline, DuckDB's and Arrow's
Python layers). Every full collection traverses all of them, and work that
builds many objects at once triggers full collections often: a web request's
50-100 ms pauses, and reading a 100,000-entry CAMT.053 statement took 1.6-2x as
long with them in reach (`bench/ingest/README.md`). Frozen, they are never
scanned again; they are never garbage anyway. What the process allocates later
is collected as before.
"""

from __future__ import annotations

import gc


def freeze() -> None:
    """Collect what is garbage now, then move every surviving object to the permanent generation.

    Call it once a process has loaded what it runs: gunicorn's ``post_worker_init``,
    the Celery worker's child after the fork, the command line before it reads.
    """
    gc.collect()
    gc.freeze()
