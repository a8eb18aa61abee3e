"""Room presence across nodes: who holds a socket in which room and doc, on every node, for the
live streams' ``here`` (``collab.sync.feeds``, ``collab.sync.feedserve``).

Each node writes its own summary of each room it holds sockets in to the channel
(``Fanout.put_here``): who (id and name, as ``here`` shows them) on which docs, capped at
``MAX_PEOPLE`` people and ``MAX_DOCS`` docs each, nothing more. A socket joining or leaving
marks the room; within ``COALESCE`` seconds the summary is written and, if it changed, a
``feed`` notice sends the other nodes' streams that watch the room to read it again. A stream
reads the summaries of its rooms only (its user's rooms: a non-member is never shown anyone),
skipping nodes that stopped beating their heartbeat.

Every ``TICK`` seconds the node renews its mark (``Fanout.mark_here``): when the channel lost
it (Redis restarted empty; or the others took this node for dead), every summary is written
again; every ``REFRESH`` seconds too, so they outlive the channel's TTL. At each tick the nodes
whose summaries were read and that stopped beating are dropped from the channel and the
streams here watching their rooms read again: a killed node's users leave within the
heartbeat's 8 s plus a tick. A node whose summary was read before it beat again (Redis
restarted empty) is read again at the tick that finds it beating; rooms whose summaries could
not be read (Redis down) are read again at the next tick. Nothing is written while
nothing changes but the mark.

While the channel cannot be read (Redis unreachable), a stream is shown what was last read of
the other nodes for each room (``LAST_KEPT`` rooms remembered), beside this node's sockets as
they change: an outage does not empty the list of the people on other nodes, and they are read
again at the first tick that reaches Redis.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from collab import logs
from collab.fanout import Fanout
from collab.sync.registry import RoomRegistry

log = logging.getLogger("collab.feeds")

TICK = 2.0  # seconds between marks and dead-node checks
REFRESH = 20.0  # seconds between rewrites of every summary (the channel keeps them 60 s)
COALESCE = 0.05  # seconds a change waits, so a burst of joins costs one write
MAX_PEOPLE = 200  # people per room per node in a summary
MAX_DOCS = 32  # docs per person in a summary
MAX_SUMMARY = 256 * 1024  # bytes of one summary read back; past it, skipped
LAST_KEPT = 1_000  # rooms whose other nodes' people are remembered for an outage

Person = dict[str, Any]


def local_here(registry: RoomRegistry, room_id: str) -> list[Person]:
    """Who holds a socket on this node in ``room_id``, and on which docs."""
    people: dict[str, Person] = {}
    for live, peer in registry.peers_of_room(room_id):
        principal = peer.principal
        if principal is None or peer.closing:
            continue
        person = people.setdefault(
            principal.user_id, {"id": principal.user_id, "name": principal.name, "docs": []}
        )
        if live.key.doc not in person["docs"]:
            person["docs"].append(live.key.doc)
    for person in people.values():
        person["docs"].sort()
    return sorted(people.values(), key=lambda p: str(p["id"]))


def merge(*groups: list[Person]) -> list[Person]:
    """One list of people from several nodes' (a person on two nodes: their docs joined)."""
    people: dict[str, Person] = {}
    for group in groups:
        for person in group:
            known = people.setdefault(
                person["id"], {"id": person["id"], "name": person["name"], "docs": []}
            )
            known["docs"] = sorted(set(known["docs"]) | set(person["docs"]))
    return sorted(people.values(), key=lambda p: str(p["id"]))


def encode(people: list[Person]) -> bytes:
    capped = [
        {"id": p["id"], "name": p["name"], "docs": p["docs"][:MAX_DOCS]}
        for p in people[:MAX_PEOPLE]
    ]
    return json.dumps(capped, separators=(",", ":"), ensure_ascii=False).encode()


def decode(summary: bytes) -> list[Person] | None:
    """A summary read back, strictly; None when it is not one."""
    if len(summary) > MAX_SUMMARY:
        return None
    try:
        found = json.loads(summary)
    except ValueError:
        return None
    if not isinstance(found, list):
        return None
    people = []
    for item in found[:MAX_PEOPLE]:
        if not isinstance(item, dict):
            return None
        person_id, name, docs = item.get("id"), item.get("name"), item.get("docs")
        if not isinstance(person_id, str) or not isinstance(name, str):
            return None
        if not isinstance(docs, list) or not all(isinstance(d, str) for d in docs):
            return None
        people.append({"id": person_id, "name": name, "docs": docs[:MAX_DOCS]})
    return people


class SharedHere:
    """One per node with a fan-out: writes this node's summaries, reads the others'."""

    def __init__(self, registry: RoomRegistry, fanout: Fanout, *, tick: float = TICK) -> None:
        self.registry = registry
        self.fanout = fanout
        self.tick = tick
        self.writes = 0  # summaries written (tests: nothing while nothing changes)
        self._dirty: set[str] = set()
        self._written: dict[str, bytes] = {}  # room -> this node's summary the channel has
        self._seen: dict[str, set[str]] = {}  # other node -> rooms its summaries were read in
        self._hidden: dict[str, set[str]] = {}  # node not beating when read -> those rooms
        self._unread: set[str] = set()  # rooms whose summaries could not be read: again
        self._last: OrderedDict[str, list[Person]] = OrderedDict()  # room -> last read
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._refreshed = time.monotonic()

    def start(self) -> None:
        self.registry.feeds.board = self
        self._task = asyncio.get_running_loop().create_task(self._run(), context=logs.detached())

    async def stop(self) -> None:
        """Stop, taking this node's summaries out of the channel (its sockets are closing)."""
        self.registry.feeds.board = None
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._written:
            await self.fanout.put_here(dict.fromkeys(self._written))
            self._written.clear()

    def changed(self, room_id: str) -> None:
        self._dirty.add(room_id)
        self._wake.set()

    async def remote(self, room_ids: Sequence[str]) -> dict[str, list[Person]]:
        """Who is in each of ``room_ids`` on the other live nodes; what was last read of them
        while the channel cannot be read."""
        found = await self.fanout.read_here(list(room_ids)) if room_ids else {}
        if found is None:
            self._unread.update(room_ids)  # the next tick has the streams read them again
            return {room: self._last[room] for room in room_ids if room in self._last}
        people = await self._read(found) if found else {}
        for room in room_ids:
            if people.get(room):
                self._last[room] = people[room]
                self._last.move_to_end(room)
            else:
                self._last.pop(room, None)
        while len(self._last) > LAST_KEPT:
            self._last.popitem(last=False)
        return people

    async def _read(self, found: dict[str, dict[str, bytes]]) -> dict[str, list[Person]]:
        nodes = {node for summaries in found.values() for node in summaries}
        alive = await self.fanout.nodes_alive(nodes)
        people: dict[str, list[Person]] = {}
        for room, summaries in found.items():
            groups = []
            for node, summary in summaries.items():
                self._seen.setdefault(node, set()).add(room)
                if alive is not None and node not in alive:
                    self._hidden.setdefault(node, set()).add(room)  # dead, or not yet beating
                    continue
                decoded = decode(summary)
                if decoded is None:
                    log.warning("skipped a bad presence summary of %s from %s", room, node)
                    continue
                groups.append(decoded)
            people[room] = merge(*groups)
        return people

    # -- the task ------------------------------------------------------------------------------

    async def _run(self) -> None:
        due = 0.0
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(0.0, due - time.monotonic())):
                    await self._wake.wait()
            self._wake.clear()
            if time.monotonic() >= due:
                due = time.monotonic() + self.tick
                await self._guarded(self._beat())
            if self._dirty:
                await asyncio.sleep(COALESCE)
                await self._guarded(self._write())

    async def _guarded(self, work: Any) -> None:
        try:
            await work
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("sharing room presence failed (tried again next tick)")

    async def _beat(self) -> None:
        lost = await self.fanout.mark_here()
        if lost:
            self._written.clear()  # the channel has none of them: write and announce all
        if lost or time.monotonic() >= self._refreshed + REFRESH:
            self._refreshed = time.monotonic()
            self._dirty |= self._rooms_held() | set(self._written)
        unread, self._unread = self._unread, set()
        for room in unread:
            self.registry.feeds.room_changed(room)
        await self._drop_dead()

    def _rooms_held(self) -> set[str]:
        return {live.key.room for live in self.registry.loaded_docs() if live.peers}

    async def _write(self) -> None:
        rooms, self._dirty = self._dirty, set()
        summaries: dict[str, bytes | None] = {}
        for room in rooms:
            people = local_here(self.registry, room)
            summaries[room] = encode(people) if people else None
        if not await self.fanout.put_here(summaries):
            self._dirty |= rooms  # the next tick tries again
            return
        self.writes += len(summaries)
        for room, summary in summaries.items():
            if self._written.get(room) == summary:
                continue
            if summary is None:
                self._written.pop(room, None)
            else:
                self._written[room] = summary
            self.registry.feeds.share_room(room)

    async def _drop_dead(self) -> None:
        if not self._seen:
            return
        alive = await self.fanout.nodes_alive(set(self._seen))
        if alive is None:
            return  # the channel cannot say: keep what is shown
        hidden, self._hidden = self._hidden, {}
        for node in set(hidden) & alive:  # read before its heartbeat (Redis restarted): again
            for room in hidden[node]:
                self.registry.feeds.room_changed(room)
        for node in set(self._seen) - alive:
            rooms = sorted(self._seen.pop(node))
            log.info("node %s stopped beating: its room presence goes", node)
            await self.fanout.drop_here(node, rooms)
            for room in rooms:
                self.registry.feeds.room_changed(room)
