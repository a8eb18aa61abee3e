"""Every Prometheus metric collab exports, in one registry per app, and the hooks that move them.

Each app owns a ``Metrics`` (on its ``Services``) with its own ``CollectorRegistry``, never the
process-global one, so tests and several apps in one process do not clash. Names all start with
``collab_``; labels are bounded enums only (message type, close code, refusal reason, quota); no
room, doc or user name is ever a label.

Cheap by construction: every labelled child is bound once here, so a hook on the hot path is a
dict lookup and an ``inc``; frames and bytes by type are plain integers read at scrape time
(``Traffic``). Quota refusals are counted from the ``quota`` an error carries
(:meth:`Metrics.refusal`, called where the refusal is answered), never from its reason text.
"""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    ProcessCollector,
    generate_latest,
)

from collab.errors import CollabError, Quota, Rate, TooManyRequests
from collab.metrics.collector import (
    FanoutCollector,
    FanoutState,
    LiveCollector,
    LoadedDocs,
    Traffic,
)
from collab.metrics.health import StoreCollector, StoreHealth

_SYNC_TYPES = {0: "sync_step1", 1: "sync_step2", 2: "sync_update"}
_TYPES = {
    1: "awareness",
    2: "auth",
    3: "query_awareness",
    100: "saved",
    101: "chat_request",
    102: "chat_reply",
}
MESSAGE_TYPES = (*_SYNC_TYPES.values(), *_TYPES.values(), "other", "text")

# Close codes the server sends or a client commonly does; anything else is "other".
CLOSE_CODES = frozenset(
    {1000, 1001, 1002, 1003, 1005, 1006, 1007, 1008, 1009, 1011, 1012, 1013}
    | {4001, 4400, 4401, 4403, 4404, 4409, 4413}
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
CREDENTIAL_DOORS = ("api", "socket")


def _door(door: str) -> str:
    return door if door in CREDENTIAL_DOORS else "api"


_FAST = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
_STORE = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_LAG = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


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
        self._timings(r)
        self.slow_consumer_closes = Counter(
            "collab_slow_consumer_closes",
            "Sockets closed 1013 because they did not read fast enough.",
            registry=r,
        )
        self.doc_rebuilds = Counter(
            "collab_doc_rebuilds",
            "Loaded documents rebuilt from the store: yrs refused an update, or too much pending.",
            registry=r,
        )
        login = Counter("collab_login_failures", "Failed logins, by method.", ["via"], registry=r)
        self._login_failures = {via: login.labels(via) for via in ("dev", "oidc", "other")}
        self._credential_failures(r)
        quota = Counter(
            "collab_quota_refusals",
            "Refusals at a configured cap, by quota.",
            ["quota"],
            registry=r,
        )
        self.quota_refusals = {q: quota.labels(q.value) for q in Quota}
        limited = Counter(
            "collab_api_rate_limited",
            "API calls refused (429) at a per-user rate of creating things, by kind.",
            ["kind"],
            registry=r,
        )
        self.api_rate_limited = {kind: limited.labels(kind.value) for kind in Rate}
        Info("collab_build", "collab's version.", registry=r).info({"version": version})
        ProcessCollector(namespace="collab", registry=r)
        self._collectors(r)

    def _collectors(self, r: CollectorRegistry) -> None:
        """What is read at scrape time (the loaded docs; a fanout's counters: ``watch_fanout``),
        and the several-node metrics moved on the update path (the lag, the catch-ups)."""
        self._live = LiveCollector()
        r.register(self._live)
        self.fanout_lag_seconds = Histogram(
            "collab_fanout_lag_seconds",
            "From another node's publish of a committed update to its arrival here.",
            buckets=_LAG,
            registry=r,
        )
        self.gap_fills = Counter(
            "collab_fanout_gap_fills",
            "Catch-up reads from the store that found updates the fan-out had not delivered.",
            registry=r,
        )
        self.gap_fill_rows = Counter(
            "collab_fanout_gap_fill_rows", "Updates those catch-up reads applied.", registry=r
        )
        self.head_polls = Counter(
            "collab_head_polls", "Periodic checks of an open doc against the store.", registry=r
        )
        self._fanout = FanoutCollector()
        r.register(self._fanout)
        self._store = StoreCollector()
        r.register(self._store)

    def _credential_failures(self, r: CollectorRegistry) -> None:
        credentials = Counter(
            "collab_credential_failures",
            "Presented credentials that failed (outcome=failed: 401/4401) or were refused "
            "unchecked because their address had failed too often (outcome=limited: 429), "
            "by door (api, socket).",
            ["door", "outcome"],
            registry=r,
        )
        self._credentials = {
            (door, outcome): credentials.labels(door, outcome)
            for door in CREDENTIAL_DOORS
            for outcome in ("failed", "limited")
        }

    def _timings(self, r: CollectorRegistry) -> None:
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

    def _traffic(self, way: str, msgs_help: str, bytes_help: str) -> Traffic:
        traffic = Traffic(way, msgs_help, bytes_help, MESSAGE_TYPES)
        self.registry.register(traffic)
        return traffic

    def watch(self, docs: LoadedDocs) -> None:
        """Report the loaded docs, peers and queues of ``docs`` at each scrape."""
        self._live.docs = docs

    def watch_fanout(self, fanout: FanoutState) -> None:
        """Report the fan-out's health and counters at each scrape."""
        self._fanout.fanout = fanout

    def watch_store(self, health: StoreHealth) -> None:
        """Report the store's probed health and its pool at each scrape."""
        self._store.health = health

    def credential_failed(self, door: str) -> None:
        """A presented credential did not check out (``collab.auth.failures``)."""
        self._credentials[(_door(door), "failed")].inc()

    def credential_refused(self, door: str) -> None:
        """A credential was refused unchecked: its address is over its failure budget."""
        self._credentials[(_door(door), "limited")].inc()

    def login_failed(self, via: object) -> None:
        self._login_failures.get(str(via), self._login_failures["other"]).inc()

    def refusal(self, exc: BaseException) -> None:
        """A refusal is being answered (socket close or HTTP error): count its quota, if any.

        Call it once where the error is turned into a close code or a response; errors without
        a ``quota`` or a ``rate`` (and non-collab exceptions) count nothing here.
        """
        if isinstance(exc, CollabError) and exc.quota is not None:
            self.quota_refusals[exc.quota].inc()
        if isinstance(exc, TooManyRequests) and exc.rate is not None:
            self.api_rate_limited[exc.rate].inc()

    def closed(self, code: int, by_server: bool, refused_as: str | None = None) -> None:
        """A socket closed with ``code``; refusals by code (1009 is the ws library's own), or
        as ``refused_as`` when the server named the refusal (one of ``REFUSAL_REASONS``)."""
        self._closes.get(code, self._closes_other).inc()
        refusal = REFUSAL_BY_CODE.get(code)
        if refusal is not None and refused_as in self.refused:
            refusal = refused_as
        if refusal is not None and (by_server or code == 1009):
            self.refused[refusal].inc()

    def handshake_refused(self, status: int) -> None:
        self._handshakes_refused.get(status, self._handshakes_refused_other).inc()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
