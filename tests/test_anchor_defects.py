"""The three pycrdt-websocket 0.16.5 defects (WEB-STACK.md), as regression tests for collab.

Each scenario is written once against a ``ServerUnderTest`` and run twice: against collab,
where it must pass, and against pycrdt-websocket 0.16.5, where it must fail
(``xfail(strict=True)``: if the anchor ever stops failing, the suite says so and the scenario
no longer proves anything).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import pytest
from pycrdt import (
    Decoder,
    Doc,
    Text,
    create_sync_message,
    create_update_message,
    handle_sync_message,
    read_message,
)
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests.support.anchors import CollabUnderTest, PycrdtWebsocketServer, ServerUnderTest
from tests.support.frames import awareness_frame
from tests.support.server import CollabServer

pytestmark = pytest.mark.anyio

# collab evicts a room this long after its last client leaves (the anchor: at once).
ROOM_IDLE_SECONDS = 0.2
SYNC_DEADLINE = 5.0


def against_anchor(defect: int) -> pytest.MarkDecorator:
    """Run the test against collab (must pass) and pycrdt-websocket (must fail)."""
    return pytest.mark.parametrize(
        "target",
        [
            "collab",
            pytest.param(
                "pycrdt-websocket",
                marks=pytest.mark.xfail(
                    strict=True, reason=f"defect {defect} of pycrdt-websocket 0.16.5"
                ),
            ),
        ],
    )


@pytest.fixture
def start_server(target: str, tmp_path: Path) -> Iterator[Callable[[], ServerUnderTest]]:
    """Start the server under test, with rooms evicted soon after their last client leaves."""
    started: list[ServerUnderTest] = []

    def start() -> ServerUnderTest:
        server: ServerUnderTest
        if target == "collab":
            collab = CollabServer(tmp_path, room_idle_seconds=ROOM_IDLE_SECONDS)
            collab.start()
            server = CollabUnderTest(collab)
        else:
            anchor = PycrdtWebsocketServer(tmp_path, auto_clean_rooms=True)
            anchor.start()
            server = anchor
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
        # Shown by pytest only when the test failed (or passed where it should have failed).
        print(f"--- {server.name} log ---\n{server.log()[-20_000:]}")


# -- a y-websocket peer over a raw socket -----------------------------------------------------


class Peer:
    """One synced pycrdt Doc (a Text named ``t``) and the awareness states this peer has seen."""

    def __init__(self, websocket: ClientConnection) -> None:
        self.websocket = websocket
        self.doc: Doc[Any] = Doc()
        self.text = self.doc.get("t", type=Text)
        self.present: dict[int, Any] = {}  # client id -> last state seen (None: removed)
        self.synced = anyio.Event()  # the server answered our SyncStep1
        self._changed = anyio.Event()

    async def read(self) -> None:
        try:
            async for message in self.websocket:
                assert isinstance(message, bytes)
                if message[0] == 0:
                    reply = handle_sync_message(message[1:], self.doc)
                    if reply is not None:
                        await self.websocket.send(reply)
                    if message[1] == 1:
                        self.synced.set()
                elif message[0] == 1:
                    decoder = Decoder(read_message(message[1:]))
                    for _ in range(decoder.read_var_uint()):
                        client, _clock = decoder.read_var_uint(), decoder.read_var_uint()
                        self.present[client] = json.loads(decoder.read_var_string())
                self._changed.set()
                self._changed = anyio.Event()
        except ConnectionClosed:
            pass

    async def until(self, predicate: Callable[[], bool]) -> None:
        while not predicate():
            await self._changed.wait()

    async def edit(self, content: str) -> None:
        state = self.doc.get_state()
        self.text += content
        await self.websocket.send(create_update_message(self.doc.get_update(state)))


@asynccontextmanager
async def peer(url: str) -> AsyncIterator[Peer]:
    """A peer that has joined: connected, reading in the background, synced with the server."""
    try:
        async with connect(url, max_size=None) as websocket, anyio.create_task_group() as tg:
            p = Peer(websocket)
            tg.start_soon(p.read)
            await websocket.send(create_sync_message(p.doc))
            with anyio.fail_after(SYNC_DEADLINE):
                await p.synced.wait()
            try:
                yield p
            finally:
                tg.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        # The task group wraps the body's failure: report the assertion itself.
        if len(group.exceptions) == 1:
            raise group.exceptions[0] from None
        raise


async def edit_and_leave(url: str, content: str) -> None:
    """A tab that types and is closed at once: no wait for any reply."""
    async with connect(url, max_size=None) as websocket:
        doc: Doc[Any] = Doc()
        await websocket.send(create_sync_message(doc))
        doc.get("t", type=Text).insert(0, content)
        await websocket.send(create_update_message(doc.get_update()))


async def wait_for_text(url: str, contents: list[str]) -> None:
    """A fresh peer sees every one of ``contents`` within the deadline."""
    async with peer(url) as p:
        try:
            with anyio.fail_after(SYNC_DEADLINE):
                await p.until(lambda: all(c in str(p.text) for c in contents))
        except TimeoutError:
            missing = [c for c in contents if c not in str(p.text)]
            raise AssertionError(f"{url} lacks {missing}; has {str(p.text)!r}") from None


# -- defect 1: a client that edits and closes at once stops every room -------------------------


@against_anchor(1)
async def test_edit_and_close_burst_leaves_server_healthy(
    start_server: Callable[[], ServerUnderTest],
) -> None:
    """pycrdt-websocket relays each edit from the room's task group; the send to a socket that
    already closed raises ClientDisconnected there, which ends the room and the server's task
    group (here: the whole process). An edit can also be dropped when its socket closed before
    the SyncStep1 greeting was sent."""
    server = start_server()
    burst = [f"<{i}>" for i in range(20)]
    # A user stays in the room (it is not evicted), so every edit is relayed to everyone,
    # including the sockets that are closing.
    async with peer(server.url("burst")) as resident:
        with anyio.fail_after(SYNC_DEADLINE):
            async with anyio.create_task_group() as tg:
                for content in burst:
                    tg.start_soon(edit_and_leave, server.url("burst"), content)

        # Another room still syncs between two peers.
        with anyio.fail_after(SYNC_DEADLINE):
            async with peer(server.url("other")) as writer, peer(server.url("other")) as reader:
                await writer.edit("still alive")
                await reader.until(lambda: "still alive" in str(reader.text))

        # The burst's room still relays, and kept every edit.
        with anyio.fail_after(SYNC_DEADLINE):
            await resident.until(lambda: all(c in str(resident.text) for c in burst))
    await wait_for_text(server.url("burst"), burst)


# -- defect 2: auto-cleaned rooms + SQLite store lose writes silently -------------------------


async def write_then_leave(url: str, contents: list[str]) -> None:
    """A user types, sees the edits reach a colleague, and both close their tabs.

    The colleague leaves last, so the room is evicted while the server may still be storing.
    """
    async with peer(url) as colleague:
        async with peer(url) as writer:
            for content in contents:
                await writer.edit(content)
            await colleague.until(lambda: all(c in str(colleague.text) for c in contents))


def edits(tag: str) -> list[str]:
    return [f"<{tag}.{i}>" for i in range(20)]


@against_anchor(2)
async def test_writes_around_room_eviction_survive_restart(
    start_server: Callable[[], ServerUnderTest],
) -> None:
    """pycrdt-websocket deletes a room when its last client leaves, cancelling the SQLiteYStore
    writes still queued (and a write cancelled mid-transaction leaves the database locked).
    Nothing is logged; the edits were relayed, so no client notices."""
    server = start_server()
    room_a, room_b = server.url("room-a"), server.url("room-b")
    expected: dict[str, list[str]] = {room_a: [], room_b: []}

    async def write(url: str, tag: str) -> None:
        expected[url] += edits(tag)
        with anyio.fail_after(SYNC_DEADLINE):
            await write_then_leave(url, edits(tag))

    await write(room_a, "a1")  # A's last client leaves: A is evicted ...
    await write(room_b, "b1")  # ... and writes go on at once, in another room
    await write(room_a, "a2")  # ... and in A again
    # Past collab's room_idle_seconds (the anchor evicted at once): A and B are evicted now,
    # so the next writers load them back from the store.
    await anyio.sleep(ROOM_IDLE_SECONDS * 3)
    await write(room_a, "a3")
    await write(room_b, "b2")

    for url, contents in expected.items():
        await wait_for_text(url, contents)
    await anyio.to_thread.run_sync(server.restart)
    for url, contents in expected.items():
        await wait_for_text(url, contents)  # same port, same store


# -- defect 3: presence is not sent to newcomers, and closed tabs linger ----------------------


@against_anchor(3)
async def test_presence_on_join_and_after_abrupt_close(
    start_server: Callable[[], ServerUnderTest],
) -> None:
    """pycrdt-websocket only relays awareness frames: a newcomer hears of the others when they
    next renew (y-websocket: every 15 s), and nobody removes a dead socket's client ids, so
    clients drop them after their own 30 s timeout."""
    server = start_server()
    url = server.url("presence")
    # collab stamps ``user`` from the socket's principal: alice is told apart by another field.
    alice_id, alice = 424242, {"user": {"name": "alice"}, "tab": "alice"}

    def sees_alice(seen: Peer) -> bool:
        state = seen.present.get(alice_id)
        return isinstance(state, dict) and state.get("tab") == "alice"

    async with peer(url) as observer:
        closed_tab = await connect(url, max_size=None)
        try:
            with anyio.fail_after(SYNC_DEADLINE):
                await closed_tab.recv()  # the server's SyncStep1: alice's tab has joined
            await closed_tab.send(awareness_frame((alice_id, 1, alice)))
            with anyio.fail_after(SYNC_DEADLINE):
                await observer.until(lambda: sees_alice(observer))

            # A newcomer learns who is here without asking (no query-awareness).
            async with peer(url) as newcomer:
                with anyio.fail_after(1.0):
                    await newcomer.until(lambda: sees_alice(newcomer))

                # Alice's tab dies: no awareness removal, no close handshake.
                closed_tab.transport.abort()
                with anyio.fail_after(3.0):
                    await newcomer.until(lambda: newcomer.present.get(alice_id) is None)
                    await observer.until(lambda: observer.present.get(alice_id) is None)
        finally:
            closed_tab.transport.abort()
