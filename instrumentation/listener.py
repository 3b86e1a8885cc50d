"""``GET /metrics`` for a process that serves no HTTP otherwise (a Celery worker).

A small WSGI app on the standard library's server, one daemon thread to accept
and one per scrape: nothing here can keep the process alive at shutdown, and a
scraper that connects and never speaks holds only its own thread. It serves the
same exposition as ``/api/metrics`` (same registry rules, same bearer token,
same refusal body).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from instrumentation.metrics import Metrics
from instrumentation.view import (
    CHALLENGE,
    PROBLEM_JSON,
    UnauthorizedBody,
    authorized,
    default_unauthorized,
    exposition,
    unauthorized_json,
)

log = logging.getLogger("recon.instrumentation")

PATH = "/metrics"
StartResponse = Callable[[str, list[tuple[str, str]]], Any]


class _Server(ThreadingMixIn, WSGIServer):
    # Scrape threads never hold up the interpreter's exit.
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
        # One line per scrape every 15 s would drown the worker's own log.
        return None


class MetricsListener:
    """Serves ``metrics`` at ``http://host:port/metrics`` from a daemon thread."""

    def __init__(
        self,
        metrics: Metrics,
        *,
        host: str,
        port: int,
        token: str | None = None,
        unauthorized: UnauthorizedBody = default_unauthorized,
    ) -> None:
        self.metrics = metrics
        self.token = token
        self.unauthorized = unauthorized
        self.server = make_server(host, port, self.wsgi, _Server, _QuietHandler)
        self.thread = threading.Thread(
            target=self.server.serve_forever, name="recon-metrics-listener", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def start(self) -> MetricsListener:
        self.thread.start()
        return self

    def stop(self) -> None:
        """Stop accepting (within the server's half-second poll) and release the port."""
        if self.thread.is_alive():
            self.server.shutdown()
        self.server.server_close()

    def wsgi(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != PATH:
            return _plain(start_response, "404 Not Found", b"not found: try /metrics\n")
        if environ.get("REQUEST_METHOD") != "GET":
            start_response("405 Method Not Allowed", [("Allow", "GET")])
            return [b""]
        if self.token and not authorized(environ.get("HTTP_AUTHORIZATION", ""), self.token):
            status, body = unauthorized_json(self.unauthorized)
            start_response(
                f"{status} Unauthorized", [("Content-Type", PROBLEM_JSON), *CHALLENGE.items()]
            )
            return [body]
        body, content_type = exposition(self.metrics, environ.get("HTTP_ACCEPT", ""))
        start_response(
            "200 OK",
            [("Content-Type", content_type), ("Cache-Control", "no-store")],
        )
        return [body]


def _plain(start_response: StartResponse, status: str, body: bytes) -> list[bytes]:
    start_response(status, [("Content-Type", "text/plain; charset=utf-8")])
    return [body]
