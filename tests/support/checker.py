"""The checker of SCALE-OUT.md ("Testing several nodes"), for tests that fail a backend under
real nodes: clients that append unique tokens to one doc's ``Y.Array`` and log what they
attempted, what a "saved" echo acknowledged and what they observed of the others' tokens.

A client whose socket drops comes back as a reloaded tab would: with a fresh Doc, so nothing
it had not seen "saved" is ever sent again. Then a token is in the final array only if a node
committed it, and ``verdict`` is sharp. A ``keep_doc`` client comes back as y-websocket does
instead, with the same Doc, whose sync re-sends whatever the server lacks (so every token it
attempted must end up in the final array: ``resent_missing``); the verdict holds for it too,
less sharply for what it observed (it re-sends that as well).

- lost = acknowledged - final: a "saved" for something the store lacks;
- peer-seen lost = observed - final: a node relayed something the store lacks;
- unexpected = final - attempted, and twice = tokens the final array holds more than once.

``cold_load`` reads the final arrays from the store in a new process.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import anyio
from pycrdt import Array, Doc

from collab.wire import framing
from tests.support.rawpeer import RawPeer
from tests.support.server import CollabServer

ITEMS = "items"
RETRY_PAUSE = 0.2  # seconds between two rounds of connection attempts over every node

# A cold load: the store opened in a new process, each doc rebuilt from its snapshot and log.
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
            result[name] = [str(t) for t in doc.get("items", type=Array).to_py() or []]
    finally:
        await store.close()
    print(json.dumps(result))

asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3:]))
"""


def items(doc: Doc[Any]) -> list[str]:
    return [str(t) for t in doc.get(ITEMS, type=Array).to_py() or []]


async def join(url: str, timeout: float = 10.0, doc: Doc[Any] | None = None) -> RawPeer:
    """A client with a fresh Doc (or ``doc``), synced; ConnectionError when the server closes
    the socket before answering the sync (it could not open the doc), TimeoutError after
    ``timeout``."""
    peer = await RawPeer.connect(url, sync=False, doc=doc)
    try:
        await peer.websocket.send(framing.sync_step1(peer.doc.get_state()))
        await peer.wait_for(lambda: peer.synced.is_set() or peer.closed.is_set(), timeout)
        if not peer.synced.is_set():
            raise ConnectionError(f"closed ({peer.close_code}) before the sync was answered")
    except BaseException:
        await peer.close()
        raise
    return peer


class Checker:
    """One client of ``room/doc``: appends ``tag.N`` every ``every`` seconds with a "saved"
    request after each, on its ``home`` node or, when that one does not take it, the next;
    ``keep_doc``: reconnects with its Doc (module docstring)."""

    def __init__(
        self,
        servers: list[CollabServer],
        room: str,
        doc: str,
        home: int,
        tag: str,
        every: float = 0.25,
        *,
        keep_doc: bool = False,
    ) -> None:
        self.servers, self.room, self.doc_name = servers, room, doc
        self.home, self.node, self.tag, self.every = home, home, tag, every
        self.keep_doc = keep_doc
        self.peer: RawPeer | None = None
        self.peers: list[RawPeer] = []
        self.sent: list[tuple[RawPeer, int, str]] = []  # (socket, saved counter, token)
        self.attempted: set[str] = set()
        self.observed: set[str] = set()
        self.counter = 0
        self.reconnects = 0
        self.on_sent: Callable[[], object] | None = None  # called right after an update left

    @property
    def live(self) -> RawPeer:
        assert self.peer is not None
        return self.peer

    async def connect(self) -> None:
        """A fresh Doc (``keep_doc``: the same) on the home node, else the next that answers;
        retried until one does (the caller bounds it)."""
        doc = None
        if self.peer is not None:
            self._observe(self.peer)
            self.reconnects += 1
            doc = self.peer.doc if self.keep_doc else None
        while True:
            for step in range(len(self.servers)):
                index = (self.home + step) % len(self.servers)
                url = self.servers[index].ws_url(self.room, self.doc_name, "collab=1")
                try:
                    self.peer = await join(url, doc=doc)
                except Exception:  # refused, reset, closed or unanswered: the next node
                    continue
                self.node = index
                self.peers.append(self.peer)
                return
            await anyio.sleep(RETRY_PAUSE)  # the pace of a client's reconnects

    async def write_one(self) -> None:
        """Append one token and ask for "saved" (reconnecting first if the socket dropped)."""
        if self.peer is None or self.peer.closed.is_set():
            await self.connect()
        peer = self.live
        self.counter += 1
        token = f"{self.tag}.{self.counter}"
        before = peer.doc.get_state()
        peer.doc.get(ITEMS, type=Array).append(token)
        self.attempted.add(token)
        try:
            await peer.websocket.send(framing.sync_update(peer.doc.get_update(before)))
            await peer.request_saved(self.counter)
        except Exception:  # the socket died: the token is lost with this Doc, never re-sent
            return
        self.sent.append((peer, self.counter, token))
        if self.on_sent is not None:
            self.on_sent()

    async def run(self, stop: anyio.Event) -> None:
        """Writes on a fixed schedule, one token every ``every`` seconds (the scenario: a
        person typing), so the rate holds when a write takes time; a client that fell behind
        (a reconnect) starts a new schedule rather than catching up in a burst."""
        due = time.monotonic()
        while not stop.is_set():
            await self.write_one()
            due = max(due + self.every, time.monotonic())
            await anyio.sleep(max(0.0, due - time.monotonic()))

    async def settle(self, timeout: float = 10.0) -> None:
        """A "saved" answered on a live socket (reconnecting until one is): everything this
        client's current Doc sent is committed."""
        while True:
            if self.peer is None or self.peer.closed.is_set():
                await self.connect()
            peer = self.live
            self.counter += 1
            counter = self.counter

            def answered(p: RawPeer = peer, n: int = counter) -> bool:
                return p.saved >= n or p.closed.is_set()

            try:
                await peer.request_saved(counter)
                await peer.wait_for(answered, timeout)
            except Exception:
                continue  # the socket dropped meanwhile: the next one
            if peer.saved >= counter:
                return

    def _observe(self, peer: RawPeer) -> None:
        self.observed.update(t for t in items(peer.doc) if not t.startswith(self.tag + "."))

    def resent_missing(self, final: list[str]) -> set[str]:
        """``keep_doc``: tokens it attempted that the final array lacks (its Doc re-sends
        everything, the in-flight ones too); always empty for a reloading client."""
        return self.attempted - set(final) if self.keep_doc else set()

    def acknowledged(self) -> set[str]:
        """Tokens a "saved" echo covered on the socket they were sent on."""
        return {token for peer, counter, token in self.sent if peer.saved >= counter}

    def final_observation(self) -> list[str]:
        """What the live Doc holds now (recorded as observed)."""
        self._observe(self.live)
        return items(self.live.doc)

    async def close(self) -> None:
        for peer in self.peers:
            await peer.close()


def verdict(clients: list[Checker], final: list[str]) -> dict[str, set[str]]:
    """What must all be empty after the faults healed (module docstring)."""
    acknowledged = set().union(*(c.acknowledged() for c in clients))
    observed = set().union(*(c.observed for c in clients))
    attempted = set().union(*(c.attempted for c in clients))
    return {
        "lost": acknowledged - set(final),
        "peer-seen lost": observed - set(final),
        "unexpected": set(final) - attempted,
        "twice": {t for t in final if final.count(t) > 1},
    }


def cold_load(store: str, room: str, docs: list[str]) -> dict[str, list[str]]:
    """Each doc's array as a new process reads it from the store."""
    result = subprocess.run(
        [sys.executable, "-c", COLD_LOAD, store, room, *docs],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    loaded: dict[str, list[str]] = json.loads(result.stdout)
    return loaded
