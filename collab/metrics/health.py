"""Whether the store answers, for /metrics: a ping every ``interval`` (``collab_store_healthy``).

A node on PostgreSQL needs it for every commit. ``/readyz`` tells a balancer when it asks; this
tells the operator's dashboard, from a cheap periodic probe (the ``ping`` ``/readyz`` uses: one
pooled connection, ``SELECT 1``) bounded by ``timeout``, so a stopped or unreachable server
shows as 0 within ``interval + timeout`` and as 1 again after its first answer. The store's
connection pool is read at scrape time when it has one (``pool_stats``: psycopg_pool's own
counters, free to read).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator, Mapping
from typing import Any, Protocol

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from collab.sync.periodic import Periodic

log = logging.getLogger("collab.metrics")

PING_TIMEOUT = 3.0  # seconds a probe waits for the store's answer


class Pingable(Protocol):
    async def ping(self) -> None:
        """Raise unless the store answers a trivial query."""


class StoreHealth:
    """The probe and what it found (read by ``StoreCollector`` at each scrape)."""

    def __init__(self, store: Pingable, interval: float, timeout: float = PING_TIMEOUT) -> None:
        self.store = store
        self.timeout = timeout
        self.healthy = True  # the store answered when the node opened it
        self.failures = 0  # probes that found no answer
        self._periodic = Periodic(interval, self.probe, "store health probe failed")

    def start(self) -> None:
        self._periodic.start()

    async def stop(self) -> None:
        await self._periodic.stop()

    async def probe(self) -> None:
        """Ping the store once; ``healthy`` says whether it answered within the timeout."""
        try:
            async with asyncio.timeout(self.timeout):
                await self.store.ping()
        except Exception as exc:  # any failure, to connect or to answer, is "not healthy"
            if self.healthy:
                log.warning("the store does not answer: %s", exc)
            self.healthy = False
            self.failures += 1
            return
        if not self.healthy:
            log.info("the store answers again")
        self.healthy = True

    def pool_stats(self) -> Mapping[str, int]:
        """The store's pool counters (psycopg_pool's names); {} without an open pool."""
        stats = getattr(self.store, "pool_stats", None)
        return stats() if callable(stats) else {}


_POOL_GAUGES = (
    ("pool_size", "collab_store_pool_connections", "Connections the store's pool holds now."),
    ("pool_available", "collab_store_pool_idle", "Of those, idle (ready to be handed out)."),
    ("requests_waiting", "collab_store_pool_waiting", "Requests waiting for a connection."),
)


class StoreCollector(Collector):
    """Nothing without a probe (SQLite, memory); else its health (1/0), its failed probes and
    the pool's gauges."""

    def __init__(self) -> None:
        self.health: StoreHealth | None = None

    def describe(self) -> list[Any]:
        return []

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        health = self.health
        if health is None:
            return
        yield GaugeMetricFamily(
            "collab_store_healthy",
            "Whether the store (PostgreSQL) answered its last periodic ping (0: it did not).",
            1.0 if health.healthy else 0.0,
        )
        yield CounterMetricFamily(
            "collab_store_probe_failures",
            "Periodic store pings that got no answer.",
            health.failures,
        )
        stats = health.pool_stats()  # {} while the pool is closed: no connection at all
        for stat, name, text in _POOL_GAUGES:
            yield GaugeMetricFamily(name, text, stats.get(stat, 0))
