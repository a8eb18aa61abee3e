"""A 3-minute random-fault soak of three real `collab serve` nodes, then the checker.

Issue 15, "Done means" 10 (the soak), with the checker of SCALE-OUT.md (tests/support/checker.py).
Three nodes share a fresh migrated database on the shared PostgreSQL and a private
``redis-server``, each node reaching it through a TCP proxy of its own (tests/support/tcpproxy.py).
4 docs x 6 clients (two of each doc on each node; half of them reconnect with their Doc as
y-websocket does, half with a fresh one as a reloaded tab) append unique tokens 4 times a second
each, with a "saved" request after each, for the whole soak. Meanwhile, one after the other with
a quiet gap between them, faults drawn by a seeded RNG until ``SOAK_FOR`` seconds have passed:

- ``node-kill``: SIGKILL of a node, started again (same port, same database) seconds later;
- ``redis-kill``: SIGKILL of Redis, started again empty (no persistence) seconds later;
- ``redis-pause``: SIGSTOP of Redis (the kernel still takes the bytes, nothing answers), SIGCONT;
- ``redis-blackhole``: one node's proxy (or every node's) passes nothing either way, restored;
- ``pg-terminate``: ``pg_terminate_backend`` of every PostgreSQL session of one node.

The seed is printed first (``-s`` shows it; pytest shows it with a failure) and in every
assertion; ``COLLAB_SOAK_SEED=<n>`` replays a run's choice of faults, victims and lengths (not
its timing: the machine's own is not replayable); ``COLLAB_SOAK_SECONDS`` shortens the soak for
a look by hand (CI runs the full length). Healed, the writers stop and the checker
asks: lost = {}, peer-seen lost = {}, unexpected = {}, no token twice, every token a Doc-keeping
client attempted in the store, and every live client, a fresh client per node and a cold load
of PostgreSQL in a new process hold the same array.
"""

from __future__ import annotations

import os
import random
import secrets
import signal
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack, ExitStack
from urllib.parse import urlsplit

import anyio
import psutil
import psycopg
import pytest

from tests.support.checker import Checker, cold_load, items, join, verdict
from tests.support.postgres import with_database
from tests.support.redisserver import PrivateRedis
from tests.support.server import CollabServer, NodesFactory
from tests.support.tcpproxy import TcpProxy, tcp_proxy
from tests.support.waiting import wait_until

pytestmark = pytest.mark.anyio

ROOM = "soak"
DOCS = [f"d{i}" for i in range(4)]
CLIENTS_PER_DOC = 6  # two per node, one of them keeping its Doc across reconnects
EVERY = 0.25  # s between a client's appends: 24 clients, 96 updates/s in all
SEED_ENV, SECONDS_ENV = "COLLAB_SOAK_SEED", "COLLAB_SOAK_SECONDS"
# s of faults; with the start and the checker, about 3 minutes in all (shorter by hand only)
SOAK_FOR = float(os.environ.get(SECONDS_ENV, "150"))
FAULTS = ("node-kill", "redis-kill", "redis-pause", "redis-blackhole", "pg-terminate")


def seed_of_this_run() -> int:
    given = os.environ.get(SEED_ENV)
    return int(given) if given else secrets.randbelow(2**32)


def terminate_sessions(server: CollabServer, url: str) -> int:
    """``pg_terminate_backend`` of every session the node holds on this test's database (told
    apart by its client ports: the shared server's other sessions are never touched)."""
    parts = urlsplit(url)
    pg_port, database = parts.port or 5432, parts.path.lstrip("/")
    ports = sorted(
        c.laddr.port
        for c in psutil.Process(server.pid).net_connections("tcp")
        if c.raddr and c.raddr.port == pg_port
    )
    admin = with_database(url, "postgres")
    with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE client_port = ANY(%s) AND datname = %s AND pid <> pg_backend_pid()",
            (ports, database),
        ).fetchall()
    return len(rows)


class Faults:
    """The faults the soak draws from, each one applied then healed (``heal`` is safe to call
    at any time: the teardown calls it whatever happened)."""

    def __init__(
        self,
        rng: random.Random,
        servers: list[CollabServer],
        redis: PrivateRedis,
        proxies: list[TcpProxy],
        url: str,
    ) -> None:
        self.rng, self.servers, self.redis = rng, servers, redis
        self.proxies, self.url = proxies, url
        self.paused = False
        self.log: list[str] = []

    async def one(self) -> None:
        """Draw a fault, apply it, hold it, heal it."""
        kind = self.rng.choice(FAULTS)
        victim = self.rng.randrange(len(self.servers))
        hold = round(self.rng.uniform(1.0, 8.0), 1)
        started = time.monotonic()
        apply: dict[str, Callable[[int, float], Awaitable[str]]] = {
            "node-kill": self.node_kill,
            "redis-kill": self.redis_kill,
            "redis-pause": self.redis_pause,
            "redis-blackhole": self.redis_blackhole,
            "pg-terminate": self.pg_terminate,
        }
        detail = await apply[kind](victim, hold)
        self.log.append(f"{kind}({detail}) {time.monotonic() - started:.1f}s")
        print(f"fault {len(self.log)}: {self.log[-1]}", flush=True)  # shown with a failure

    async def node_kill(self, victim: int, hold: float) -> str:
        server = self.servers[victim]
        assert server.proc is not None
        server.proc.kill()
        await anyio.to_thread.run_sync(server.proc.wait, 10)
        await anyio.sleep(hold)  # the outage
        await anyio.to_thread.run_sync(server.start, 30)
        return f"node {victim}, down {hold} s"

    async def redis_kill(self, victim: int, hold: float) -> str:
        await anyio.to_thread.run_sync(self.redis.kill)
        await anyio.sleep(min(hold, 3.0))  # the outage
        await anyio.to_thread.run_sync(self.redis.start)  # same port, nothing in it
        return f"down {min(hold, 3.0)} s"

    async def redis_pause(self, victim: int, hold: float) -> str:
        assert self.redis.proc is not None
        os.kill(self.redis.proc.pid, signal.SIGSTOP)
        self.paused = True
        await anyio.sleep(hold)  # the outage
        self.heal()
        return f"{hold} s"

    async def redis_blackhole(self, victim: int, hold: float) -> str:
        every = self.rng.random() < 0.5
        cut = self.proxies if every else [self.proxies[victim]]
        for proxy in cut:
            proxy.blackhole()
        await anyio.sleep(hold)  # the partition
        for proxy in cut:
            proxy.restore()
        return f"{'every node' if every else f'node {victim}'}, {hold} s"

    async def pg_terminate(self, victim: int, hold: float) -> str:
        count = await anyio.to_thread.run_sync(terminate_sessions, self.servers[victim], self.url)
        return f"node {victim}, {count} sessions"

    def heal(self) -> None:
        if self.paused and self.redis.proc is not None and self.redis.proc.poll() is None:
            os.kill(self.redis.proc.pid, signal.SIGCONT)
        self.paused = False
        for proxy in self.proxies:
            if proxy.mode != "pass":
                proxy.restore()


async def soak(faults: Faults, clients: list[Checker]) -> None:
    """Everyone writing while faults come one after the other for SOAK_FOR seconds; then every
    node answering again, and every client's last "saved"."""
    stop = anyio.Event()
    started = time.monotonic()
    async with anyio.create_task_group() as tg:
        for client in clients:
            tg.start_soon(client.run, stop)
        while time.monotonic() - started < SOAK_FOR:
            await anyio.sleep(faults.rng.uniform(1.0, 4.0))  # the scenario: a quiet gap
            await faults.one()
        await anyio.sleep(2.0)  # the scenario: clients writing after the last fault
        stop.set()
    for client in clients:
        await client.settle(timeout=15)


async def check(
    servers: list[CollabServer], url: str, clients: list[Checker], seed: int
) -> dict[str, int]:
    """The checker (module docstring); what the test prints."""
    by_doc = {doc: [c for c in clients if c.doc_name == doc] for doc in DOCS}

    def live_converged() -> bool:
        for group in by_doc.values():
            seen = [items(c.live.doc) for c in group]
            if any(s != seen[0] for s in seen) or any(c.resent_missing(seen[0]) for c in group):
                return False
        return True

    def what() -> str:
        return f"seed {seed}: " + str(
            {d: [len(items(c.live.doc)) for c in g] for d, g in by_doc.items()}
        )

    await wait_until(live_converged, 15, interval=0.05, what=what)
    fresh: dict[str, list[list[str]]] = {doc: [] for doc in DOCS}
    for server in servers:  # a fresh client per node
        for doc in DOCS:
            peer = await join(server.ws_url(ROOM, doc))
            fresh[doc].append(items(peer.doc))
            await peer.close()
    cold = await anyio.to_thread.run_sync(cold_load, url, ROOM, DOCS)
    for doc, group in by_doc.items():
        final = group[0].final_observation()
        for client in group:
            client.final_observation()
        problems = {name: found for name, found in verdict(group, cold[doc]).items() if found}
        assert problems == {}, f"seed {seed}, {doc}"
        resent = set().union(*(c.resent_missing(final) for c in group))
        assert resent == set(), f"seed {seed}, {doc}: a Doc-keeping client's token missing"
        assert cold[doc] == final, f"seed {seed}, {doc}: the cold load differs"
        assert fresh[doc] == [final] * len(servers), f"seed {seed}, {doc}: a fresh client differs"
    return {
        "attempted": sum(len(c.attempted) for c in clients),
        "acknowledged": sum(len(c.acknowledged()) for c in clients),
        "reconnects": sum(c.reconnects for c in clients),
        "final": sum(len(cold[doc]) for doc in DOCS),
    }


async def close_all(clients: list[Checker]) -> None:
    for client in clients:
        await client.close()


async def test_three_minutes_of_random_faults_lose_nothing_and_converge(
    pg_url: str, nodes: NodesFactory, private_redis: PrivateRedis
) -> None:
    seed = seed_of_this_run()
    print(f"soak seed {seed} (replay: {SEED_ENV}={seed})", flush=True)
    rng = random.Random(seed)
    key = secrets.token_urlsafe(32)  # one for every node: PostgreSQL has no dir to keep it in
    with ExitStack() as proxies_stack:
        proxies = [proxies_stack.enter_context(tcp_proxy(private_redis.port)) for _ in range(3)]
        servers: list[CollabServer] = []
        for proxy in proxies:  # each node reaches Redis through a proxy of its own
            servers += nodes(
                1,
                store=pg_url,
                secret_key=key,
                dev_token=f"test-dev-token-soak-{proxies[0].port}",
                fanout=f"redis://127.0.0.1:{proxy.port}/0",
                # Clients reconnect as fast as a fault lets them: past the default rate.
                handshake_rate=100,
                handshake_burst=200,
            )
        for server in servers:
            server.remember(key)  # the fixture checks it never reaches a log
        faults = Faults(rng, servers, private_redis, proxies, pg_url)
        proxies_stack.callback(faults.heal)  # SIGCONT and pass, whatever happens
        clients = [
            Checker(servers, ROOM, doc, c % 3, f"{doc}c{c}", EVERY, keep_doc=c < 3)
            for doc in DOCS
            for c in range(CLIENTS_PER_DOC)
        ]
        started = time.monotonic()
        async with AsyncExitStack() as stack:
            stack.push_async_callback(close_all, clients)
            with anyio.fail_after(SOAK_FOR + 90):
                for client in clients:
                    await client.connect()
                await soak(faults, clients)
                seen = await check(servers, pg_url, clients, seed)
    print(
        f"soak seed {seed}: {time.monotonic() - started:.0f} s, {len(faults.log)} faults"
        f" [{'; '.join(faults.log)}]; {seen}"
    )
    assert seen["final"] > 0
