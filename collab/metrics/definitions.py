"""Every Prometheus metric collab exports, in one registry per app.

Each app owns a ``Metrics`` (``app.state.metrics``) with its own ``CollectorRegistry``, never
the process-global one, so tests and several apps in one process do not clash. Names all start
with ``collab_``; labels are bounded enums only (message type, close code, refusal reason,
quota); no room, doc or user name is ever a label.

Cheap by construction: every labelled child is bound once here, so a hook on the hot path is a
dict lookup and an ``inc``. Traffic, closes and refusals are seen at the ASGI boundary by
``SocketObserver`` (no code in the read loop); rooms and queues are read only when scraped.
"""

from __future__ import annotations

import hmac
import logging
import socket
import threading
import time
from collections.abc import Iterable, Iterator
from socketserver import ThreadingMixIn
from typing import TYPE_CHECKING, Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    ProcessCollector,
    generate_latest,
    make_wsgi_app,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from collab import logs

if TYPE_CHECKING:
    from collab.rooms import RoomRegistry

log = logging.getLogger("collab.ws")

_SYNC_TYPES = {0: "sync_step1", 1: "sync_step2", 2: "sync_update"}
_TYPES = {1: "awareness", 2: "auth", 3: "query_awareness", 100: "saved"}
MESSAGE_TYPES = (*_SYNC_TYPES.values(), *_TYPES.values(), "other", "text")

# Close codes the server sends or a client commonly does; anything else is "other".
CLOSE_CODES = frozenset(
    {1000, 1001, 1002, 1003, 1005, 1006, 1007, 1008, 1009, 1011, 1012, 1013}
    | {4400, 4401, 4403, 4404, 4409, 4413}
)
# A refused message closes its socket with a code that names why (DESIGN.md's table).
REFUSAL_BY_CODE = {
    1002: "protocol",
    1003: "unsupported",
    1007: "hostile",
    1008: "rate",
    1009: "too_big",
    4413: "doc_too_large",
}
REFUSAL_REASONS = ("readonly", *REFUSAL_BY_CODE.values())
# Quota refusals at the socket, by (close code, reason); None matches any reason.
QUOTA_BY_CLOSE = {
    (4413, None): "doc_size",
    (4403, "document limit of this room reached"): "docs_per_room",
    (4403, "room limit reached"): "rooms_per_user",
}
QUOTAS = tuple(QUOTA_BY_CLOSE.values())

_FAST = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
_STORE = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def message_type(frame: bytes) -> str:
    """The y-websocket message type of a frame, as a label (bounded)."""
    if not frame:
        return "other"
    kind = frame[0]
    if kind == 0:
        return _SYNC_TYPES.get(frame[1], "other") if len(frame) > 1 else "other"
    return _TYPES.get(kind, "other")


class Metrics:
    def __init__(self, version: str = "") -> None:
        self.registry = r = CollectorRegistry()
        self.connections = Gauge(
            "collab_connections", "Open WebSocket connections (accepted).", registry=r
        )
        closes = Counter(
            "collab_connection_closes", "Closed WebSockets by close code.", ["code"], registry=r
        )
        self._closes = {code: closes.labels(str(code)) for code in CLOSE_CODES}
        self._closes_other = closes.labels("other")
        refused_hs = Counter(
            "collab_handshakes_refused",
            "WebSocket handshakes refused before accept, by HTTP status.",
            ["status"],
            registry=r,
        )
        self._handshakes_refused = {s: refused_hs.labels(str(s)) for s in (403, 429, 503)}
        self._handshakes_refused_other = refused_hs.labels("other")
        self.incoming = self._traffic(
            "received", "Messages received from clients, by type.", "Bytes received, by type."
        )
        self.outgoing = self._traffic(
            "sent", "Messages sent to clients, by type.", "Bytes sent, by type."
        )
        refused = Counter(
            "collab_messages_refused", "Messages refused, by reason.", ["reason"], registry=r
        )
        self.refused = {reason: refused.labels(reason) for reason in REFUSAL_REASONS}
        self.update_apply_seconds = Histogram(
            "collab_update_apply_seconds",
            "Time to apply one client update to its Doc.",
            buckets=_FAST,
            registry=r,
        )
        self.store_commit_seconds = Histogram(
            "collab_store_commit_seconds",
            "Time for one group commit of a doc's updates to return (durable).",
            buckets=_STORE,
            registry=r,
        )
        self.compactions = Counter("collab_compactions", "Compaction runs.", registry=r)
        self.compaction_seconds = Histogram(
            "collab_compaction_seconds", "Time of one compaction.", buckets=_STORE, registry=r
        )
        self.slow_consumer_closes = Counter(
            "collab_slow_consumer_closes",
            "Sockets closed 1013 because they did not read fast enough.",
            registry=r,
        )
        login = Counter("collab_login_failures", "Failed logins, by method.", ["via"], registry=r)
        self._login_failures = {via: login.labels(via) for via in ("dev", "oidc", "other")}
        quota = Counter(
            "collab_quota_refusals",
            "Refusals at a configured cap, by quota.",
            ["quota"],
            registry=r,
        )
        self.quota_refusals = {name: quota.labels(name) for name in QUOTAS}
        Info("collab_build", "collab's version.", registry=r).info({"version": version})
        ProcessCollector(namespace="collab", registry=r)
        self._live = _LiveCollector()
        r.register(self._live)

    def _traffic(self, way: str, msgs_help: str, bytes_help: str) -> dict[str, tuple[Any, Any]]:
        msgs = Counter(f"collab_messages_{way}", msgs_help, ["type"], registry=self.registry)
        nbytes = Counter(f"collab_{way}_bytes", bytes_help, ["type"], registry=self.registry)
        return {t: (msgs.labels(t), nbytes.labels(t)) for t in MESSAGE_TYPES}

    def watch(self, rooms: RoomRegistry) -> None:
        """Report the loaded docs, peers and queues of ``rooms`` at each scrape."""
        self._live.rooms = rooms

    def login_failed(self, via: object) -> None:
        self._login_failures.get(str(via), self._login_failures["other"]).inc()

    def closed(self, code: int, reason: str, by_server: bool) -> None:
        self._closes.get(code, self._closes_other).inc()
        refusal = REFUSAL_BY_CODE.get(code)
        if refusal is not None and (by_server or code == 1009):  # 1009: the ws library's
            self.refused[refusal].inc()
        if not by_server:
            return
        quota = QUOTA_BY_CLOSE.get((code, None)) or QUOTA_BY_CLOSE.get((code, reason))
        if quota is not None:
            self.quota_refusals[quota].inc()

    def handshake_refused(self, status: int) -> None:
        self._handshakes_refused.get(status, self._handshakes_refused_other).inc()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class _LiveCollector(Collector):
    """Gauges read from the loaded rooms when scraped: nothing is counted on the hot path."""

    def __init__(self) -> None:
        self.rooms: RoomRegistry | None = None

    def describe(self) -> list[Any]:
        return []

    def collect(self) -> Iterator[GaugeMetricFamily]:
        registry = self.rooms
        # A scrape on the metrics port runs in another thread: copy before reading.
        loaded = registry.loaded_rooms() if registry is not None else []
        peers = [peer for room in loaded for peer in list(room.peers.values())]
        queued = [peer.queued_bytes for peer in peers]
        max_size = registry.settings.max_doc_size if registry is not None else 0
        sizes = [room.size for room in loaded]
        yield GaugeMetricFamily("collab_docs_loaded", "Documents held in memory.", len(loaded))
        rooms = len({room.key.room for room in loaded})
        yield GaugeMetricFamily("collab_rooms_loaded", "Rooms with a doc in memory.", rooms)
        yield GaugeMetricFamily("collab_peers", "Sockets joined to a loaded doc.", len(peers))
        yield GaugeMetricFamily(
            "collab_outbound_queue_bytes", "Bytes queued to send, all sockets.", sum(queued)
        )
        yield GaugeMetricFamily(
            "collab_outbound_queue_max_bytes",
            "Bytes queued to send to the most backed-up socket.",
            max(queued, default=0),
        )
        yield GaugeMetricFamily(
            "collab_commit_queue_bytes",
            "Bytes of applied updates waiting for their commit, all docs.",
            sum(room.pending_commit_bytes for room in loaded),
        )
        yield GaugeMetricFamily(
            "collab_doc_size_max_ratio",
            "Largest loaded doc's size as a fraction of max_doc_size (quota usage).",
            max(sizes, default=0) / max_size if max_size else 0.0,
        )


def bearer_ok(header: str | None, token: str) -> bool:
    """Whether an Authorization header carries ``Bearer <token>`` (constant-time compare)."""
    if not token:
        return True
    scheme, _, value = (header or "").partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(value.strip().encode("utf-8"), token.encode("utf-8"))


async def metrics_endpoint(request: Request) -> Response:
    """GET /metrics: open unless ``metrics_token`` is set."""
    state = request.app.state
    if not bearer_ok(request.headers.get("authorization"), state.settings.metrics_token):
        return JSONResponse(
            {"error": {"code": "unauthorized", "message": "a bearer token is required"}},
            status_code=401,
            headers={"WWW-Authenticate": "Bearer"},
        )
    metrics: Metrics = state.metrics
    return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass  # scrapes every few seconds would drown the log


def serve_metrics_port(metrics: Metrics, host: str, port: int, token: str) -> WSGIServer:
    """GET /metrics on its own port, in a daemon thread (``metrics_port``); ``shutdown()`` it.

    A thread, not the event loop: scrapes keep answering while the loop is busy, and the
    collector copies what it reads.
    """
    exposition = make_wsgi_app(metrics.registry)

    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != "/metrics":
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not found"]
        if not bearer_ok(environ.get("HTTP_AUTHORIZATION"), token):
            body = b'{"error": {"code": "unauthorized", "message": "a bearer token is required"}}'
            start_response(
                "401 Unauthorized",
                [("Content-Type", "application/json"), ("WWW-Authenticate", "Bearer")],
            )
            return [body]
        return exposition(environ, start_response)  # type: ignore[no-any-return]

    class Server(ThreadingMixIn, WSGIServer):
        daemon_threads = True
        address_family = socket.AF_INET6 if ":" in host else socket.AF_INET

    server = make_server(host.strip("[]"), port, app, Server, _QuietHandler)
    threading.Thread(target=server.serve_forever, name="collab-metrics", daemon=True).start()
    return server


class SocketObserver:
    """Pure ASGI: gives each WebSocket a connection id and observes it from the outside.

    Counts frames and bytes by type both ways, open connections, handshakes refused before
    accept, and each close (by code; refusals and quotas follow from the server's close code
    and reason), then logs one line per closed socket. HTTP passes through.
    """

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket":
            await self.app(scope, receive, send)
            return
        logs.start_connection()
        m = self.metrics
        incoming, outgoing = m.incoming, m.outgoing
        accepted = False
        close: tuple[int, str, bool] | None = None  # code, reason, sent by the server

        async def observed_receive() -> Message:
            nonlocal close
            message = await receive()
            kind = message["type"]
            if kind == "websocket.receive":
                data = message.get("bytes")
                if data is not None:
                    msgs, nbytes = incoming[message_type(data)]
                    nbytes.inc(len(data))
                else:
                    msgs, nbytes = incoming["text"]
                    nbytes.inc(len(message.get("text") or ""))
                msgs.inc()
            elif kind == "websocket.disconnect" and close is None and accepted:
                close = (int(message.get("code", 1005)), "", False)
            return message

        async def observed_send(message: Message) -> None:
            nonlocal accepted, close
            kind = message["type"]
            if kind == "websocket.send":
                data = message.get("bytes")
                if data is not None:
                    msgs, nbytes = outgoing[message_type(data)]
                    msgs.inc()
                    nbytes.inc(len(data))
            elif kind == "websocket.accept":
                accepted = True
                m.connections.inc()
            elif kind == "websocket.close":
                if not accepted:
                    m.handshake_refused(403)  # uvicorn answers a close before accept with 403
                elif close is None:
                    close = (int(message.get("code", 1000)), message.get("reason") or "", True)
            elif kind == "websocket.http.response.start":
                m.handshake_refused(int(message.get("status", 0)))
            await send(message)

        started = time.monotonic()
        try:
            await self.app(scope, observed_receive, observed_send)
        finally:
            if accepted:
                m.connections.dec()
                code, reason, by_server = close or (1006, "", False)
                m.closed(code, reason, by_server)
                log.info(
                    "socket closed by %s after %.1fs",
                    "server" if by_server else "client",
                    time.monotonic() - started,
                    extra={"code": code},
                )
