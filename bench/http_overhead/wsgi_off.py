"""recon's WSGI app without instrumentation, for the gunicorn mode of the benchmark only.

Served as ``gunicorn -c ops/gunicorn.conf.py --pythonpath bench/http_overhead wsgi_off:app``:
the same ``create_app`` as ``wsgi:app`` with ``register_observability`` skipped, so
production keeps no switch to turn metrics off.
"""

from __future__ import annotations

import recon


def _build() -> object:
    original = recon.register_observability
    recon.register_observability = lambda app: None  # type: ignore[assignment]
    try:
        return recon.create_app()
    finally:
        recon.register_observability = original


app = _build()
