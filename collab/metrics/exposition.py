"""GET /metrics: on the main port (a Starlette endpoint) or on its own port (a WSGI thread).

Both answer the same exposition of one app's registry, open unless ``metrics_token`` is set;
then both require ``Authorization: Bearer <token>`` and refuse with the same JSON 401.
"""

from __future__ import annotations

import hmac
import json
import socket
import threading
from collections.abc import Awaitable, Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CONTENT_TYPE_LATEST, make_wsgi_app
from starlette.requests import Request
from starlette.responses import Response

from collab.errors import error_body, json_error
from collab.metrics.definitions import Metrics

_UNAUTHORIZED = ("unauthorized", "a bearer token is required")
_CHALLENGE = {"WWW-Authenticate": "Bearer"}


def bearer_ok(header: str | None, token: str) -> bool:
    """Whether an Authorization header carries ``Bearer <token>`` (constant-time compare)."""
    if not token:
        return True
    scheme, _, value = (header or "").partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(value.strip().encode("utf-8"), token.encode("utf-8"))


def metrics_endpoint(metrics: Metrics, token: str) -> Callable[[Request], Awaitable[Response]]:
    """The main port's GET /metrics for ``metrics``, open unless ``token`` is set."""

    async def endpoint(request: Request) -> Response:
        if not bearer_ok(request.headers.get("authorization"), token):
            return json_error(401, *_UNAUTHORIZED, headers=_CHALLENGE)
        return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    return endpoint


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass  # scrapes every few seconds would drown the log


def serve_metrics_port(metrics: Metrics, host: str, port: int, token: str) -> WSGIServer:
    """GET /metrics on its own port, in a daemon thread (``metrics_port``); ``shutdown()`` it.

    A thread, not the event loop: scrapes keep answering while the loop is busy, and the
    collector copies what it reads.
    """
    exposition = make_wsgi_app(metrics.registry)
    refusal = json.dumps(error_body(*_UNAUTHORIZED)).encode("utf-8")

    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != "/metrics":
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not found"]
        if not bearer_ok(environ.get("HTTP_AUTHORIZATION"), token):
            headers = [("Content-Type", "application/json"), *_CHALLENGE.items()]
            start_response("401 Unauthorized", headers)
            return [refusal]
        return exposition(environ, start_response)  # type: ignore[no-any-return]

    class Server(ThreadingMixIn, WSGIServer):
        daemon_threads = True
        address_family = socket.AF_INET6 if ":" in host else socket.AF_INET

    server = make_server(host.strip("[]"), port, app, Server, _QuietHandler)
    threading.Thread(target=server.serve_forever, name="collab-metrics", daemon=True).start()
    return server
