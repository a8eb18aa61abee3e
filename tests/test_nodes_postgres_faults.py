"""PostgreSQL failing under two real `collab serve` nodes: nothing is "saved" or relayed that
PostgreSQL then lacks, and the nodes recover without a restart.

Issue 15, "Done means" 5, and SCALE-OUT.md point 12 (PostgreSQL down: no "saved", nothing
relayed, /readyz 503 so a balancer drains the node), on a private cluster this test may crash
(tests/support/postgres.py; never the shared server) and the shared Redis under a prefix of
the test's own. Two docs, each with one writing client per node, each client appending a token
4 times a second with a "saved" request after each (tests/support/checker.py: a client whose
socket drops comes back with a fresh Doc, so it never re-sends what it had not seen "saved"):

- ``pg_ctl -m immediate stop`` (a crash: no checkpoint, recovery at the next start) while the
  clients write, started again 5 s later (the commits waiting for it go through once it is
  back) or 15 s later (longer than a commit waits for a connection: the docs being written give
  up, closing their sockets with 1011, and their clients reconnect): /readyz answers 503 on both
  nodes while PostgreSQL is down and 200 after it is back, the same processes;
- ``pg_terminate_backend`` of every session of one node, three times 1.5 s apart, while the
  clients write: its pools reconnect, and it answers /readyz 200 after, the same process.

And the health metric: ``collab_store_healthy`` goes to 0 on every node within a few probes
of PostgreSQL stopping, and back to 1 once it is up again, the same processes.

After each fault with clients: lost = acknowledged - final = {}, peer-seen lost = observed -
final = {}, unexpected = final - attempted = {}, no token twice; a client written through each
node gets its "saved" (the nodes work again); every live client, a fresh client per node and a
cold load of PostgreSQL in a new process hold the same array.
"""

from __future__ import annotations

import functools
import secrets
import time
from collections.abc import Iterator
from contextlib import AsyncExitStack
from typing import Any

import anyio
import httpx
import psutil
import psycopg
import pytest

from tests.support.checker import Checker, cold_load, items, join, verdict
from tests.support.postgres import PrivateCluster, fresh_database, private_cluster
from tests.support.redisserver import delete_prefix, shared_redis, unique_prefix
from tests.support.server import CollabServer, NodesFactory
from tests.support.waiting import wait_until

pytestmark = pytest.mark.anyio

ROOM = "team"
DOCS = ["d0", "d1"]
WRITE_BEFORE, WRITE_AFTER = 3.0, 3.0  # seconds
COMMIT_WAIT = 10.0  # seconds a commit waits for a pooled connection (collab.db.postgres)


@pytest.fixture
def cluster() -> Iterator[tuple[PrivateCluster, str]]:
    """A private cluster and a fresh migrated database on it. Started again at teardown if a
    test left it stopped, so the database can be dropped. Take it before ``nodes``: the nodes
    stop first."""
    with private_cluster() as pg, fresh_database(pg.admin_url) as url:
        try:
            yield pg, url
        finally:
            if not pg.running:
                pg.start()


@pytest.fixture
def shared() -> Iterator[dict[str, Any]]:
    """Settings for nodes on the shared Redis, under a prefix of this test's own."""
    url, prefix = shared_redis(), unique_prefix()
    yield {"fanout": url, "fanout_prefix": prefix}
    delete_prefix(url, prefix)


def start(nodes: NodesFactory, url: str, shared: dict[str, Any]) -> list[CollabServer]:
    key = secrets.token_urlsafe(32)  # one for every node: PostgreSQL has no dir to keep it in
    # Clients reconnect as fast as a fault lets them: past the default handshake rate.
    servers = nodes(2, store=url, secret_key=key, handshake_rate=100, handshake_burst=200, **shared)
    for server in servers:
        server.remember(key)  # the fixture checks it never reaches a log
    return servers


async def readiness(servers: list[CollabServer], status: int) -> bool:
    """Whether every node answers /readyz with ``status``."""
    async with httpx.AsyncClient(timeout=10) as http:
        for server in servers:
            if (await http.get(server.http_url + "/readyz")).status_code != status:
                return False
    return True


async def close_all(clients: list[Checker]) -> None:
    for client in clients:
        await client.close()


async def check_after_faults(
    servers: list[CollabServer], url: str, clients: list[Checker]
) -> dict[str, Any]:
    """Settle every client, write through each node, then the checker and convergence; what
    the test prints."""
    for client in clients:
        await client.settle()
    # Each node works again without a restart: a write through it is "saved".
    probes = [
        Checker([server], ROOM, doc, 0, f"probe{i}{doc}")
        for i, server in enumerate(servers)
        for doc in DOCS
    ]
    clients.extend(probes)  # closed with the others
    for probe in probes:
        await probe.write_one()
        await probe.settle()
    by_doc = {doc: [c for c in clients if c.doc_name == doc] for doc in DOCS}

    def live_converged() -> bool:
        return all(len({tuple(items(c.live.doc)) for c in group}) == 1 for group in by_doc.values())

    def what() -> str:
        return str({d: [len(items(c.live.doc)) for c in g] for d, g in by_doc.items()})

    await wait_until(live_converged, 10, interval=0.05, what=what)
    fresh: dict[str, list[list[str]]] = {doc: [] for doc in DOCS}
    for server in servers:  # a fresh client per node
        for doc in DOCS:
            peer = await join(server.ws_url(ROOM, doc))
            fresh[doc].append(items(peer.doc))
            await peer.close()
    cold = await anyio.to_thread.run_sync(cold_load, url, ROOM, DOCS)
    attempted = acknowledged = 0
    for doc, group in by_doc.items():
        final = group[0].final_observation()
        for client in group:
            client.final_observation()
        problems = {name: found for name, found in verdict(group, cold[doc]).items() if found}
        assert problems == {}, doc
        assert final == cold[doc], f"{doc}: the live clients differ from PostgreSQL"
        assert fresh[doc] == [final] * len(servers), f"{doc}: a fresh client differs"
        attempted += len(set().union(*(c.attempted for c in group)))
        acknowledged += len(set().union(*(c.acknowledged() for c in group)))
    return {
        "attempted": attempted,
        "acknowledged": acknowledged,
        "reconnects": sum(c.reconnects for c in clients),
    }


# 5 s: commits wait and go through once it is back; 15 s: longer than a commit waits, so the
# docs being written give up (their sockets close 1011) and their clients reconnect.
@pytest.mark.parametrize("down_for", [5.0, 15.0])
async def test_postgresql_crashed_and_restarted_loses_nothing_and_the_nodes_recover(
    cluster: tuple[PrivateCluster, str],
    nodes: NodesFactory,
    shared: dict[str, Any],
    down_for: float,
) -> None:
    pg, url = cluster
    servers = start(nodes, url, shared)
    clients = [Checker(servers, ROOM, doc, n, f"{doc}n{n}") for doc in DOCS for n in range(2)]
    async with AsyncExitStack() as stack:
        stack.push_async_callback(close_all, clients)
        with anyio.fail_after(150):
            for client in clients:
                await client.connect()
            stop = anyio.Event()
            async with anyio.create_task_group() as tg:
                for client in clients:
                    tg.start_soon(client.run, stop)
                await anyio.sleep(WRITE_BEFORE)  # the scenario: clients writing
                await anyio.to_thread.run_sync(pg.stop, "immediate")
                crashed = time.monotonic()
                # Drained: no node says it is ready while PostgreSQL is down.
                await wait_until(functools.partial(readiness, servers, 503), 15, interval=0.2)
                unready_after = time.monotonic() - crashed
                await anyio.sleep(max(0.0, down_for - unready_after))  # the outage's length
                await anyio.to_thread.run_sync(pg.start)
                restarted = time.monotonic()
                await wait_until(functools.partial(readiness, servers, 200), 30, interval=0.2)
                ready_after = time.monotonic() - restarted
                await anyio.sleep(WRITE_AFTER)  # the scenario: clients writing again
                stop.set()
            seen = await check_after_faults(servers, url, clients)
    print(
        f"PostgreSQL crashed for {down_for:.0f} s: /readyz 503 on both nodes {unready_after:.1f} s"
        f" after the crash, 200 {ready_after:.1f} s after the restart; {seen}"
    )
    if down_for > COMMIT_WAIT:
        assert seen["reconnects"] > 0, "no doc gave up: the outage did not outlast a commit"


def sessions_of(server: CollabServer, pg_port: int) -> set[int]:
    """The client ports of the node's connections to PostgreSQL (its pools, its search
    index's session): how pg_stat_activity tells one node's sessions from the other's."""
    return {
        c.laddr.port
        for c in psutil.Process(server.pid).net_connections("tcp")
        if c.raddr and c.raddr.port == pg_port
    }


def terminate(pg: PrivateCluster, ports: set[int]) -> int:
    """pg_terminate_backend of every session from those client ports; how many there were."""
    with psycopg.connect(pg.admin_url, autocommit=True, connect_timeout=5) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE client_port = ANY(%s) AND pid <> pg_backend_pid()",
            (sorted(ports),),
        ).fetchall()
    return len(rows)


async def test_one_nodes_sessions_terminated_loses_nothing_and_it_recovers(
    cluster: tuple[PrivateCluster, str], nodes: NodesFactory, shared: dict[str, Any]
) -> None:
    pg, url = cluster
    servers = start(nodes, url, shared)
    victim = servers[0]
    clients = [Checker(servers, ROOM, doc, n, f"{doc}n{n}") for doc in DOCS for n in range(2)]
    terminated: list[int] = []
    async with AsyncExitStack() as stack:
        stack.push_async_callback(close_all, clients)
        with anyio.fail_after(120):
            for client in clients:
                await client.connect()
            stop = anyio.Event()
            async with anyio.create_task_group() as tg:
                for client in clients:
                    tg.start_soon(client.run, stop)
                for _ in range(3):
                    await anyio.sleep(1.5)  # the scenario: clients writing between the faults
                    ports = sessions_of(victim, pg.port)
                    terminated.append(await anyio.to_thread.run_sync(terminate, pg, ports))
                await anyio.sleep(2.0)  # the scenario: clients writing after the last one
                stop.set()
            # The victim serves on: ready, without a restart.
            await wait_until(functools.partial(readiness, [victim], 200), 15, interval=0.2)
            seen = await check_after_faults(servers, url, clients)
    assert victim.proc is not None and victim.proc.poll() is None
    assert sum(terminated) > 0, "no session of the node was found to terminate"
    print(f"terminated {terminated} sessions of one node; {seen}")


async def store_healthy(servers: list[CollabServer], value: float) -> bool:
    """Whether every node's /metrics says ``collab_store_healthy`` is ``value``."""
    async with httpx.AsyncClient(timeout=10) as http:
        for server in servers:
            text = (await http.get(server.http_url + "/metrics")).text
            if f"collab_store_healthy {value}" not in text:
                return False
    return True


async def test_the_store_health_metric_follows_postgresql_down_and_back(
    cluster: tuple[PrivateCluster, str], nodes: NodesFactory, shared: dict[str, Any]
) -> None:
    pg, url = cluster
    interval = 0.5
    servers = start(nodes, url, {**shared, "store_health_interval": interval})
    async with httpx.AsyncClient(timeout=10) as http:
        text = (await http.get(servers[0].http_url + "/metrics")).text
    assert "collab_store_healthy 1.0" in text
    assert "collab_store_pool_connections " in text and "collab_store_pool_waiting 0.0" in text
    await anyio.to_thread.run_sync(pg.stop, "fast")
    # Within a probe and its timeout (3 s), with room for a slow machine.
    await wait_until(functools.partial(store_healthy, servers, 0.0), 20, interval=0.2)
    await anyio.to_thread.run_sync(pg.start)
    await wait_until(functools.partial(store_healthy, servers, 1.0), 30, interval=0.2)
    async with httpx.AsyncClient(timeout=10) as http:
        text = (await http.get(servers[1].http_url + "/metrics")).text
    assert "collab_store_probe_failures_total 0.0" not in text  # the outage was counted
    assert all(server.proc is not None and server.proc.poll() is None for server in servers)
