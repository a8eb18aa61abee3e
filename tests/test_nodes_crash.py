"""kill -9 of one of three real `collab serve` nodes on PostgreSQL, mid-edit: nothing lost.

Issue 15, "Done means" 3, in the reduced, bounded form this 2-core machine runs (SCALE-OUT.md,
"Testing several nodes"): 3 nodes on a fresh migrated PostgreSQL database and the shared Redis,
3 docs x 3 clients (one client of each doc on each node), each client appending unique tokens
to a ``Y.Array`` 4 times a second with a "saved" request after each. Node 0 is killed with
SIGKILL at ~5 s, the instant one of its clients sent an update (so that update is in flight,
not yet "saved"), and started again (same port, same database) at ~10 s. Its clients reconnect
to the next node as soon as their socket drops, re-sending whatever the server lacks through
the sync exchange, as y-websocket does. The writers stop 2 s after the restart. The checker:

- lost = acknowledged ("saved" covering it, on the socket it was sent on) - final = {};
- unexpected = final - attempted = {}, and no token twice; beyond the issue, every attempted
  token (the in-flight ones too) is in the final array, since its client re-sent it;
- every live client, a fresh client per node and a cold load of the store in a new process
  hold the same final array, within 10 s of the restart.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import AsyncExitStack
from typing import Any

import anyio
import pytest
from pycrdt import Array, Doc

from collab.wire import framing
from tests.support.rawpeer import RawPeer
from tests.support.redisserver import delete_prefix, shared_redis, unique_prefix
from tests.support.server import CollabServer, NodesFactory
from tests.support.waiting import wait_until

pytestmark = pytest.mark.anyio

ROOM = "team"
DOCS = ["d0", "d1", "d2"]
CLIENTS_PER_DOC = 3
EVERY = 0.25  # s between a client's appends: 9 clients, 36 updates/s in all
KILL_AT, RESTART_AT, STOP_AFTER_RESTART = 5.0, 10.0, 2.0

# A cold load: the store opened in a new process, the doc rebuilt from its snapshot and log.
COLD_LOAD = """
import asyncio, json, sys
from pycrdt import Array, Doc
from collab.names import DocKey
from collab.store import open_store

async def main(url, room, docs):
    store = open_store(url)
    await store.open()
    try:
        result = {}
        for name in docs:
            stored = await store.load(DocKey(room, name))
            doc = Doc()
            if stored.snapshot is not None:
                doc.apply_update(stored.snapshot)
            for _, update in stored.updates:
                doc.apply_update(update)
            result[name] = list(doc.get("items", type=Array).to_py() or [])
    finally:
        await store.close()
    print(json.dumps(result))

asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3:]))
"""


@pytest.fixture
def shared() -> Iterator[dict[str, Any]]:
    """Settings for nodes on the shared Redis, under a prefix of this test's own."""
    url, prefix = shared_redis(), unique_prefix()
    yield {"fanout": url, "fanout_prefix": prefix}
    delete_prefix(url, prefix)


def items(doc: Doc[Any]) -> list[str]:
    return [str(t) for t in doc.get("items", type=Array).to_py() or []]


class Writer:
    """One client of one doc: appends ``tag.N`` tokens, asks "saved" after each, and on a
    dropped socket reconnects to the next node with the same Doc (its sync sends the rest)."""

    def __init__(self, servers: list[CollabServer], doc: str, home: int, tag: str) -> None:
        self.servers, self.doc_name, self.node, self.tag = servers, doc, home, tag
        self.doc: Doc[Any] = Doc()
        self.array = self.doc.get("items", type=Array)
        self.peer: RawPeer | None = None
        self.peers: list[RawPeer] = []
        self.sent: list[tuple[RawPeer, int, str]] = []  # (socket, saved counter, token)
        self.attempted: set[str] = set()
        self.counter = 0
        self.reconnects = 0
        self.on_sent: Callable[[], object] | None = None  # called right after an update left

    async def connect(self) -> None:
        """To this client's node, or the next one that answers."""
        last: Exception | None = None
        for step in range(len(self.servers)):
            index = (self.node + step) % len(self.servers)
            url = self.servers[index].ws_url(ROOM, self.doc_name, "collab=1")
            try:
                self.peer = await RawPeer.connect(url, doc=self.doc)
            except Exception as exc:  # refused, reset, or no sync answer: try the next
                last = exc
                continue
            self.node = index
            self.peers.append(self.peer)
            return
        raise AssertionError(f"{self.tag}: no node accepted a connection: {last!r}")

    async def run(self, stop: anyio.Event) -> None:
        while not stop.is_set():
            assert self.peer is not None
            if self.peer.closed.is_set():
                self.reconnects += 1
                await self.connect()
                assert self.peer is not None
            self.counter += 1
            token = f"{self.tag}.{self.counter}"
            before = self.doc.get_state()
            self.array.append(token)
            self.attempted.add(token)
            try:
                await self.peer.websocket.send(framing.sync_update(self.doc.get_update(before)))
                await self.peer.request_saved(self.counter)
                self.sent.append((self.peer, self.counter, token))
                if self.on_sent is not None:
                    self.on_sent()
            except Exception:  # the node died under us: the token is re-sent by the next sync
                pass
            await anyio.sleep(EVERY)

    async def settle(self) -> None:
        """A last "saved" request on the live socket, answered."""
        assert self.peer is not None
        self.counter += 1
        await self.peer.request_saved(self.counter)
        await self.peer.wait_for(lambda: self.peer is not None and self.peer.saved >= self.counter)

    def acknowledged(self) -> set[str]:
        """Tokens a "saved" echo covered on the socket they were sent on."""
        return {token for peer, counter, token in self.sent if peer.saved >= counter}


async def close_all(writers: list[Writer]) -> None:
    for writer in writers:
        for peer in writer.peers:
            await peer.close()


def cold_load(store: str) -> dict[str, list[str]]:
    result = subprocess.run(
        [sys.executable, "-c", COLD_LOAD, store, ROOM, *DOCS],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    loaded: dict[str, list[str]] = json.loads(result.stdout)
    return loaded


async def test_a_node_killed_mid_edit_loses_no_acknowledged_update(
    pg_url: str, nodes: NodesFactory, shared: dict[str, Any]
) -> None:
    key = secrets.token_urlsafe(32)  # one for every node: PostgreSQL has no dir to keep it in
    servers = nodes(
        3,
        store=pg_url,
        secret_key=key,
        handshake_rate=100,
        handshake_burst=200,
        **shared,
    )
    for server in servers:
        server.remember(key)  # the fixture checks it never reaches a log
    victim = servers[0]
    writers = [
        Writer(servers, doc, (d + c) % 3, f"{doc}c{c}")
        for d, doc in enumerate(DOCS)
        for c in range(CLIENTS_PER_DOC)
    ]
    async with AsyncExitStack() as stack:
        with anyio.fail_after(60):
            stack.push_async_callback(close_all, writers)
            for writer in writers:
                await writer.connect()
            stop = anyio.Event()
            started = time.monotonic()
            async with anyio.create_task_group() as tg:
                for writer in writers:
                    tg.start_soon(writer.run, stop)
                await anyio.sleep(KILL_AT)
                # Mid-edit: the instant an update left for node 0, before it can be "saved".
                sent_to_victim = anyio.Event()
                for writer in writers:
                    if writer.node == 0:
                        writer.on_sent = sent_to_victim.set
                await sent_to_victim.wait()
                assert victim.proc is not None
                victim.proc.kill()
                for writer in writers:
                    writer.on_sent = None
                await anyio.to_thread.run_sync(victim.proc.wait, 10)
                killed_at = time.monotonic() - started
                await anyio.sleep(max(0.0, RESTART_AT - (time.monotonic() - started)))
                await anyio.to_thread.run_sync(victim.start)
                restarted = time.monotonic()
                await anyio.sleep(STOP_AFTER_RESTART)
                stop.set()
            for writer in writers:
                await writer.settle()

            by_doc = {doc: [w for w in writers if w.doc_name == doc] for doc in DOCS}

            def live_converged() -> bool:
                for group in by_doc.values():
                    seen = [items(w.doc) for w in group]
                    if any(s != seen[0] for s in seen):
                        return False
                    if not set().union(*(w.attempted for w in group)) <= set(seen[0]):
                        return False  # not every token re-sent by a reconnect arrived yet
                return True

            def what() -> str:
                return str({d: [len(items(w.doc)) for w in g] for d, g in by_doc.items()})

            await wait_until(live_converged, 10, interval=0.05, what=what)
            live_took = time.monotonic() - restarted
            fresh: dict[str, list[list[str]]] = {doc: [] for doc in DOCS}
            for server in servers:  # a fresh client per node
                for doc in DOCS:
                    peer = await RawPeer.connect(server.ws_url(ROOM, doc))
                    fresh[doc].append(items(peer.doc))
                    await peer.close()
            cold = await anyio.to_thread.run_sync(cold_load, pg_url)
            all_took = time.monotonic() - restarted

    acknowledged = attempted = 0
    for doc, group in by_doc.items():
        final = items(group[0].doc)
        acked = set().union(*(w.acknowledged() for w in group))
        tried = set().union(*(w.attempted for w in group))
        acknowledged, attempted = acknowledged + len(acked), attempted + len(tried)
        # Against the store itself: a live client keeps its own tokens whatever the nodes did.
        assert acked - set(cold[doc]) == set(), f"{doc}: acknowledged, then lost"
        assert set(cold[doc]) - tried == set(), f"{doc}: unexpected tokens"
        assert len(final) == len(set(final)), f"{doc}: a token twice"
        assert fresh[doc] == [final] * len(servers), f"{doc}: a fresh client differs"
        assert cold[doc] == final, f"{doc}: the cold load differs"
    moved = sum(w.reconnects for w in writers)
    print(
        f"killed at {killed_at:.1f} s, restarted at {RESTART_AT:.0f} s: {attempted} attempted,"
        f" {acknowledged} acknowledged (the rest in flight at the kill), {moved} clients"
        f" reconnected; live clients converged"
        f" {live_took:.2f} s and fresh/cold loads {all_took:.2f} s after the restart"
    )
    assert moved >= CLIENTS_PER_DOC  # node 0's clients (one per doc) had to move
    assert all_took < 10.0
