"""Gauges read from the loaded documents when scraped: nothing is counted on the hot path.

The collector sees the registry of loaded docs only through the small Protocols below (the
names the sync layer keeps), so metrics never imports the update path.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Protocol

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from collab.names import DocKey
from collab.settings import Settings


class QueuedPeer(Protocol):
    @property
    def queued_bytes(self) -> int: ...


class LoadedDoc(Protocol):
    @property
    def key(self) -> DocKey: ...
    @property
    def peers(self) -> Mapping[Any, QueuedPeer]: ...
    @property
    def size(self) -> int: ...
    @property
    def pending_commit_bytes(self) -> int: ...


class LoadedDocs(Protocol):
    """The registry of loaded docs, as a scrape reads it."""

    @property
    def settings(self) -> Settings: ...
    def loaded_docs(self) -> Sequence[LoadedDoc]: ...


class LiveCollector(Collector):
    """Docs, rooms, peers and queues of ``docs`` (None before the app started: zeros)."""

    def __init__(self) -> None:
        self.docs: LoadedDocs | None = None

    def describe(self) -> list[Any]:
        return []

    def collect(self) -> Iterator[GaugeMetricFamily]:
        docs = self.docs
        # A scrape on the metrics port runs in another thread: copy before reading.
        loaded = list(docs.loaded_docs()) if docs is not None else []
        peers = [peer for doc in loaded for peer in list(doc.peers.values())]
        queued = [peer.queued_bytes for peer in peers]
        max_size = docs.settings.max_doc_size if docs is not None else 0
        sizes = [doc.size for doc in loaded]
        yield GaugeMetricFamily("collab_docs_loaded", "Documents held in memory.", len(loaded))
        rooms = len({doc.key.room for doc in loaded})
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
            sum(doc.pending_commit_bytes for doc in loaded),
        )
        yield GaugeMetricFamily(
            "collab_doc_size_max_ratio",
            "Largest loaded doc's size as a fraction of max_doc_size (quota usage).",
            max(sizes, default=0) / max_size if max_size else 0.0,
        )


class FanoutCounters(Protocol):
    published: int
    unshared: int
    publish_dropped: int
    received: int
    bad_entries: int
    bad_keys: int
    errors: int
    notices: int
    awareness_published: int
    awareness_received: int
    awareness_refused: int
    rate_checks: int
    rate_fallbacks: int
    notice_gaps: int
    awareness_gaps: int


class FanoutState(Protocol):
    """A node's fan-out (``collab.fanout.Fanout``), as a scrape reads it."""

    @property
    def healthy(self) -> bool: ...
    @property
    def stats(self) -> FanoutCounters: ...


_FANOUT_COUNTERS = (
    ("published", "Committed updates and control entries this node published to other nodes."),
    ("unshared", "Committed updates not published: no other node hosts their doc."),
    ("publish_dropped", "Entries never published (queue full, Redis down, key refused)."),
    ("received", "Entries of other nodes delivered to a loaded doc here."),
    ("bad_entries", "Stream entries skipped because collab did not write them that way."),
    ("bad_keys", "Times a doc's Redis key was not a readable stream (read around it)."),
    ("errors", "Fan-out failures (Redis connection lost, timeouts, subscriber errors)."),
    ("notices", "Other nodes' notices (role changes) received here."),
    ("awareness_published", "Awareness changes of this node's sockets shared with the others."),
    ("awareness_received", "Other nodes' awareness changes shown to this node's sockets."),
    ("awareness_refused", "Awareness changes refused: another principal's client id, or the cap."),
    ("rate_checks", "Rate-limit checks decided by the bucket every node shares (Redis)."),
    ("rate_fallbacks", "Rate-limit checks this node decided alone: Redis did not answer in time."),
    (
        "notice_gaps",
        "Notices trimmed before this node read them: it rechecked roles, tokens, feeds.",
    ),
    (
        "awareness_gaps",
        "Awareness changes trimmed before this node read them: it re-read the docs' states.",
    ),
)


class FanoutCollector(Collector):
    """Nothing without a fanout; else its health (1/0) and its counters."""

    def __init__(self) -> None:
        self.fanout: FanoutState | None = None

    def describe(self) -> list[Any]:
        return []

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        fanout = self.fanout
        if fanout is None:
            return
        yield GaugeMetricFamily(
            "collab_fanout_healthy",
            "Whether the fan-out channel (Redis) works (0: updates cross nodes by head polls).",
            1.0 if fanout.healthy else 0.0,
        )
        stats = fanout.stats
        for name, text in _FANOUT_COUNTERS:
            yield CounterMetricFamily(f"collab_fanout_{name}", text, getattr(stats, name))


class Traffic(Collector):
    """Messages and bytes by type, one way: plain integers bumped on the hot path (a frame
    relayed to 49 sockets is 49 bumps: no lock, no labelled child), read as counters when
    scraped (``collab_messages_{way}_total``, ``collab_{way}_bytes_total``)."""

    def __init__(self, way: str, msgs_help: str, bytes_help: str, types: Sequence[str]) -> None:
        self.way = way
        self.help = (msgs_help, bytes_help)
        self.msgs = dict.fromkeys(types, 0)
        self.nbytes = dict.fromkeys(types, 0)

    def add(self, kind: str, size: int) -> None:
        self.msgs[kind] += 1
        self.nbytes[kind] += size

    def add_run(self, kind: str, count: int, size: int) -> None:
        """``count`` frames of ``size`` bytes each (one payload relayed to many sockets)."""
        self.msgs[kind] += count
        self.nbytes[kind] += count * size

    def describe(self) -> list[Any]:
        return []

    def collect(self) -> Iterator[CounterMetricFamily]:
        msgs_help, bytes_help = self.help
        msgs = CounterMetricFamily(f"collab_messages_{self.way}", msgs_help, labels=["type"])
        nbytes = CounterMetricFamily(f"collab_{self.way}_bytes", bytes_help, labels=["type"])
        for kind, count in list(self.msgs.items()):
            msgs.add_metric([kind], count)
            nbytes.add_metric([kind], self.nbytes[kind])
        yield msgs
        yield nbytes
