# syntax=docker/dockerfile:1
# recon: build the wheels in one stage, install them into a slim runtime that
# carries no compiler, no pip cache and no source tree.

FROM python:3.11-slim AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY . .
# The wheel of recon plus every dependency, so the runtime installs offline.
# wsgi.py, the gunicorn config and the Alembic scripts are not package data:
# they are staged beside it, migrations/ only where the tree has one.
RUN pip wheel --wheel-dir /wheels . \
    && mkdir -p /stage/ops \
    && cp wsgi.py /stage/ \
    && cp ops/gunicorn.conf.py /stage/ops/ \
    && if [ -d migrations ]; then cp -r migrations /stage/; fi

FROM python:3.11-slim AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PORT=8000 \
    RECON_BIND_HOST=0.0.0.0 \
    RECON_DATA_DIR=/var/lib/recon
# A fixed numeric uid, so Kubernetes' runAsNonRoot can verify it.
RUN groupadd --system --gid 10001 recon \
    && useradd --system --uid 10001 --gid recon --home-dir /app --no-create-home \
       --shell /usr/sbin/nologin recon \
    && mkdir -p /var/lib/recon \
    && chown recon:recon /var/lib/recon
# Bind-mounting the wheels keeps them out of every runtime layer.
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    pip install --no-index --find-links=/wheels /wheels/recon-*.whl
WORKDIR /app
COPY --from=builder --chown=root:root /stage/ /app/
USER 10001:10001
EXPOSE 8000
# slim has no curl; urlopen raises on a refused connection or a non-2xx status.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('PORT', '8000') + '/api/health', timeout=3)"]
CMD ["gunicorn", "-c", "ops/gunicorn.conf.py", "wsgi:app"]
