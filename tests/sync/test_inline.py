"""Frames handled inline (``collab.sync.inline``): the read loop's ``take``, alone and through a
real server, where a client's burst of frames in one write mixes frames the protocol takes
with frames websockets parses."""

from __future__ import annotations

import asyncio
import contextvars
from typing import Any, cast

import anyio
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from pycrdt import Doc, Text
from websockets.frames import Frame, Opcode

from collab import logs
from collab.errors import HostileInput, RateLimited
from collab.sync.admission import Throttle
from collab.sync.inline import InlineReader
from collab.sync.livedoc import LiveDoc
from collab.sync.peer import Peer
from collab.wire import framing
from tests.support.rawpeer import RawPeer, raw_socket
from tests.support.server import CollabServer, ServerFactory

pytestmark = pytest.mark.anyio


class _Live:
    def __init__(self) -> None:
        self.usable = True
        self.handled: list[bytes] = []
        self.fail_with: Exception | None = None

    def handle_now(self, peer: Any, frame: bytes) -> None:
        if self.fail_with is not None:
            raise self.fail_with
        self.handled.append(frame)


class _Peer:
    takes_input = True


def _reader(burst: float = 100, stall: float = 10) -> tuple[InlineReader, _Live, list[int]]:
    live = _Live()
    now = [0.0]
    throttle = Throttle(
        10, 1e9, message_burst=burst, byte_burst=1e9, stall_seconds=stall, clock=lambda: now[0]
    )
    reader = InlineReader(cast(LiveDoc, live), cast(Peer, _Peer()), throttle)
    woken: list[int] = []
    reader.wake = lambda: woken.append(1)
    return reader, live, woken


def test_nothing_is_taken_unless_the_read_loop_waits_and_the_doc_is_usable() -> None:
    reader, live, _ = _reader()
    assert not reader.take(b"a")  # the loop is busy
    reader.ready = True
    live.usable = False  # failed or being rebuilt: the read loop awaits that
    assert not reader.take(b"a")
    live.usable = True
    assert reader.take(b"a") and live.handled == [b"a"]


def test_a_frame_after_the_server_closed_the_socket_is_discarded() -> None:
    reader, live, woken = _reader()
    reader.ready = True
    reader.peer.takes_input = False  # type: ignore[misc]
    assert reader.take(b"late")
    assert live.handled == [] and woken == []


def test_an_error_stops_taking_and_wakes_the_loop_with_it() -> None:
    reader, live, woken = _reader()
    reader.ready = True
    live.fail_with = HostileInput("bad")
    assert reader.take(b"bad")
    assert woken == [1] and not reader.ready
    pending = reader.wait_done()
    assert isinstance(pending, HostileInput)
    assert reader.wait_done() is None  # once
    assert not reader.take(b"next")  # until the loop waits again


def test_over_the_rate_the_loop_is_woken_to_pause_and_past_the_stall_to_close() -> None:
    reader, live, woken = _reader(burst=2, stall=0.5)
    reader.ready = True
    assert reader.take(b"1") and reader.take(b"2")
    assert woken == []
    assert reader.take(b"3")  # over the burst: handled, then a pause
    assert woken == [1]
    pause = reader.wait_done()
    assert isinstance(pause, float) and pause > 0
    reader.throttle.clock = lambda: 1.0  # still over, and throttled for longer than the stall
    reader.ready = True
    assert reader.take(b"4")
    assert isinstance(reader.wait_done(), RateLimited)
    assert live.handled == [b"1", b"2", b"3", b"4"]


def test_a_frame_is_handled_in_the_read_loops_context_whoever_calls_take() -> None:
    seen: list[dict[str, Any]] = []

    def register_in_the_read_loop() -> InlineReader:
        logs.bind(room="r1", doc="d1", peer=7)
        reader, live, _ = _reader()
        live.handle_now = lambda peer, frame: seen.append(logs.current())  # type: ignore[method-assign]
        return reader

    reader = contextvars.Context().run(register_in_the_read_loop)
    reader.ready = True
    assert contextvars.Context().run(reader.take, b"x")  # the protocol's callback: another context
    assert seen and seen[0]["room"] == "r1" and seen[0]["peer"] == 7


# -- through a real server ----------------------------------------------------------------


async def _next_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    first, second = await reader.readexactly(2)
    size = second & 0x7F
    if size == 126:
        size = int.from_bytes(await reader.readexactly(2), "big")
    elif size == 127:
        size = int.from_bytes(await reader.readexactly(8), "big")
    return first & 0x0F, await reader.readexactly(size)


def _frame(data: bytes, opcode: Opcode = Opcode.BINARY, fin: bool = True) -> bytes:
    return Frame(opcode, data, fin=fin).serialize(mask=True, extensions=[])


def _edits(count: int) -> tuple[list[bytes], str]:
    doc: Doc[Any] = Doc()
    text = doc.get("text", type=Text)
    updates = []
    for i in range(count):
        before = doc.get_state()
        text.insert(len(str(text)), f"<{i}>" + "x" * (i * 40))  # small and 126+ byte frames
        updates.append(framing.sync_update(doc.get_update(before)))
    return updates, str(text)


async def test_a_burst_in_one_write_is_applied_in_order_whichever_path_takes_each_frame(
    server: CollabServer,
) -> None:
    url = server.ws_url("inline", "doc")
    updates, expected = _edits(9)
    with anyio.fail_after(30):
        watcher = await RawPeer.connect(url)
        reader, writer = await raw_socket(url)
        # whole frames, a ping, a message in two fragments, then whole frames again: the first
        # run is taken inline, the rest parsed by websockets, then inline again
        fragment = updates[4]
        burst = (
            b"".join(_frame(u) for u in updates[:3])
            + _frame(b"are you there", Opcode.PING)
            + _frame(updates[3])
            + _frame(fragment[:5], fin=False)
            + _frame(fragment[5:], Opcode.CONT)
            + b"".join(_frame(u) for u in updates[5:8])
        )
        writer.write(burst)
        opcodes = []
        while Opcode.PONG.value not in opcodes:
            opcode, _ = await _next_frame(reader)
            opcodes.append(opcode)
        writer.write(_frame(updates[8]))  # and a frame on its own, after the queue drained
        await watcher.wait_for(lambda: str(watcher.text) == expected, timeout=20)
        writer.write(_frame(framing.sync_update(b"\x05\xff\xff\xff\xff")))  # hostile: 1007
        while True:
            opcode, payload = await _next_frame(reader)
            if opcode == Opcode.CLOSE.value:
                assert int.from_bytes(payload[:2], "big") == 1007
                break
        writer.close()
        await watcher.insert(len(expected), "!")  # the others carry on
        again = await RawPeer.connect(url)
        await again.wait_for(lambda: str(again.text) == expected + "!", timeout=10)
        await watcher.close()
        await again.close()


async def test_inline_frames_are_counted_in_the_metrics(server_factory: ServerFactory) -> None:
    server = server_factory()
    url = server.ws_url("inline", "counted")
    updates, expected = _edits(5)
    with anyio.fail_after(30):
        before = await _incoming_updates(server)
        watcher = await RawPeer.connect(url)
        _, writer = await raw_socket(url)
        writer.write(b"".join(_frame(u) for u in updates))
        await watcher.wait_for(lambda: str(watcher.text) == expected, timeout=20)
        assert await _incoming_updates(server) - before == 5
        writer.close()
        await watcher.close()


async def _incoming_updates(server: CollabServer) -> float:
    async with httpx.AsyncClient(timeout=5) as client:
        text = (await client.get(server.http_url + "/metrics")).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "collab_messages_received_total":
                if sample.labels.get("type") == "sync_update":
                    return sample.value
    return 0.0
