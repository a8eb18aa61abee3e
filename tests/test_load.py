"""Bursts, connection churn, large documents and slow consumers against a real server process."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import socket
import time
from collections.abc import AsyncIterator, Callable

import anyio
import httpx
import psutil
import pytest
from pycrdt import Doc, Text
from websockets.asyncio.client import connect
from websockets.client import ClientProtocol
from websockets.exceptions import ConnectionClosed
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.uri import parse_uri

from collab.wire import AwarenessEntry, encode_awareness, framing
from tests.support.jspeer import JsPeer
from tests.support.rawpeer import RawPeer
from tests.support.server import CollabServer, ServerFactory
from tests.support.waiting import wait_until

pytestmark = pytest.mark.anyio

MB = 1024 * 1024


async def test_edit_and_disconnect_burst_loses_nothing(server: CollabServer) -> None:
    async def edit_and_leave(i: int) -> None:
        doc: Doc[Text] = Doc()
        text = doc.get("text", type=Text)
        text += f"<{i}>"
        async with connect(server.ws_url("burst", "d")) as ws:
            await ws.send(framing.sync_update(doc.get_update()))
        # closed at once, without waiting for anything

    with anyio.fail_after(20):
        await asyncio.gather(*(edit_and_leave(i) for i in range(20)))
        peer = await RawPeer.connect(server.ws_url("burst", "d"))
        await peer.wait_for(lambda: all(f"<{i}>" in str(peer.text) for i in range(20)))
        await peer.close()
    assert "Traceback" not in server.log()


async def test_connect_disconnect_cycles_return_files_and_memory(
    server_factory: ServerFactory,
) -> None:
    # One address opening 1,100 sockets quickly: lift the handshake rate limit for this test.
    server = server_factory(handshake_rate=10_000, handshake_burst=10_000)
    proc = psutil.Process(server.pid)

    async def cycles(n: int) -> None:
        for i in range(n):
            peer = await RawPeer.connect(server.ws_url("churn", f"d{i % 7}"))
            await peer.close()

    def server_closed(n: int) -> bool:
        """The server has finished with ``n`` sockets (one "socket closed" line each)."""
        return server.log().count("socket closed") >= n

    with anyio.fail_after(120):
        await cycles(100)  # warm up: imports, allocator pools, loaded docs
        await wait_until(lambda: server_closed(100), 10, interval=0.05)
        fds, rss = proc.num_fds(), proc.memory_info().rss
        await cycles(1000)
        await wait_until(lambda: server_closed(1100), 10, interval=0.05)
    assert proc.num_fds() <= fds + 2
    growth = proc.memory_info().rss - rss
    assert growth < 10 * 1024 * 1024, f"RSS grew {growth / 1e6:.1f} MB over 1,000 cycles"


async def test_slow_consumer_is_closed_1013_without_hurting_others(
    server_factory: ServerFactory,
) -> None:
    server = server_factory(outbound_queue_bytes=2 * 1024 * 1024)
    proc = psutil.Process(server.pid)
    url = server.ws_url("slow", "d")
    with anyio.fail_after(120):
        # A consumer that never reads: its client buffers one frame, then TCP fills up.
        slow = await connect(url, max_size=None, max_queue=1)
        await slow.send(framing.sync_step1(b"\x00"))
        writer = await RawPeer.connect(url)
        ping_a = await RawPeer.connect(server.ws_url("other", "d"))
        ping_b = await RawPeer.connect(server.ws_url("other", "d"))
        rss_before = proc.memory_info().rss
        worst = 0.0
        chunk = "y" * 100_000
        for i in range(300):  # 30 MB through the room; the doc itself stays small
            await writer.insert(0, chunk)
            await writer.delete(0, len(chunk))
            if i % 10 == 0:
                started = time.monotonic()
                await ping_a.insert(0, "p")
                await ping_b.wait_for(lambda n=i // 10 + 1: len(str(ping_b.text)) >= n, 5)
                worst = max(worst, time.monotonic() - started)
        rss_growth = proc.memory_info().rss - rss_before
        # The deadline is on the close itself: an unbounded queue would keep the socket open
        # after the reader drained the buffers, not fail only at the overall timeout.
        code = None
        with anyio.fail_after(15):
            try:
                while True:
                    await slow.recv()
            except ConnectionClosed as exc:
                code = exc.rcvd.code if exc.rcvd else None
    assert code == 1013
    assert worst < 1.0, f"round trip in another room took {worst:.2f}s"
    assert rss_growth < 40 * 1024 * 1024, f"server RSS grew {rss_growth / 1e6:.0f} MB"
    for peer in (writer, ping_a, ping_b):
        await peer.close()


async def test_doc_over_max_size_closes_the_writer_4413_and_keeps_the_doc(
    server_factory: ServerFactory,
) -> None:
    server = server_factory(max_doc_size=64 * 1024)
    with anyio.fail_after(20):
        writer = await RawPeer.connect(server.ws_url("big", "d"))
        reader = await RawPeer.connect(server.ws_url("big", "d"))
        await writer.insert(0, "a" * 30_000)
        await reader.wait_for(lambda: len(str(reader.text)) == 30_000)
        await writer.insert(0, "b" * 40_000)
        await writer.closed.wait()
        assert writer.close_code == 4413
        assert reader.close_code is None
        fresh = await RawPeer.connect(server.ws_url("big", "d"))
        assert str(fresh.text) == "a" * 30_000
        for peer in (reader, fresh):
            await peer.close()


# --- a client on a slow link: a plain socket read at a set pace -----------------------------


class PacedPeer:
    """A WebSocket client over a plain socket with a small receive buffer, read at ``rate``
    bytes a second (or not at all): the server's sends wait on TCP as for a client on a slow
    link. websockets' sans-I/O protocol does the framing and answers pings."""

    def __init__(self, sock_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = sock_reader
        self.writer = writer
        self.protocol: ClientProtocol | None = None
        self.doc: Doc[Text] = Doc()
        self.text = self.doc.get("text", type=Text)
        self.frames = 0  # whole messages received
        self.changed = asyncio.Event()
        self.close_code: int | None = None
        self.received = 0  # bytes read off the socket
        self._partial: list[bytes] = []

    @classmethod
    async def connect(cls, url: str, rcvbuf: int = 32 * 1024) -> PacedPeer:
        uri = parse_uri(url)
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)  # no window autotuning
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, (uri.host, uri.port))
        reader, writer = await asyncio.open_connection(sock=sock, limit=rcvbuf)
        peer = cls(reader, writer)
        peer.protocol = ClientProtocol(uri, max_size=None)
        peer.protocol.send_request(peer.protocol.connect())
        await peer._flush()
        while True:
            events = await peer._receive(await reader.read(rcvbuf))
            if any(isinstance(e, Response) for e in events):
                return peer

    async def send(self, data: bytes) -> None:
        assert self.protocol is not None
        self.protocol.send_binary(data)
        await self._flush()

    async def pump(self, rate: float, chunk: int = 16 * 1024) -> None:
        """Read ``chunk`` bytes at a time, keeping to ``rate`` bytes a second on average."""
        started, first = time.monotonic(), self.received
        while self.close_code is None:
            data = await self.reader.read(chunk)
            await self._receive(data)
            if not data:
                return
            due = started + (self.received - first) / rate
            await anyio.sleep(max(0.0, due - time.monotonic()))  # pacing, not a wait

    async def wait_for(self, predicate: Callable[[], bool], timeout: float) -> None:
        with anyio.fail_after(timeout):
            while not predicate():
                self.changed.clear()
                await self.changed.wait()

    def abort(self) -> None:
        self.writer.transport.abort()

    async def _receive(self, data: bytes) -> list[object]:
        assert self.protocol is not None
        self.received += len(data)
        if data:
            self.protocol.receive_data(data)
        else:
            self.protocol.receive_eof()
            self.close_code = self.close_code or 1006
        events: list[object] = list(self.protocol.events_received())
        for event in events:
            if isinstance(event, Frame):
                self._on_frame(event)
        await self._flush()  # pongs, the close reply
        self.changed.set()
        return events

    def _on_frame(self, frame: Frame) -> None:
        if frame.opcode in (Opcode.BINARY, Opcode.CONT):
            self._partial.append(bytes(frame.data))
            if frame.fin:
                message = framing.decode_message(b"".join(self._partial))
                self._partial = []
                self.frames += 1
                if isinstance(message, framing.SyncStep2 | framing.SyncUpdate):
                    self.doc.apply_update(message.update)
        elif frame.opcode is Opcode.CLOSE:
            assert self.protocol is not None and self.protocol.close_rcvd is not None
            self.close_code = self.protocol.close_rcvd.code

    async def _flush(self) -> None:
        assert self.protocol is not None
        for data in self.protocol.data_to_send():
            if data:
                self.writer.write(data)
        if not self.writer.is_closing():
            await self.writer.drain()


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@contextlib.asynccontextmanager
async def typing_along(writer: RawPeer) -> AsyncIterator[None]:
    """The writer edits every 50 ms meanwhile: joiners arrive in a busy room, where relays
    and commits are in flight when their initial sync is released."""
    stop = anyio.Event()

    async def type_along() -> None:
        i = 0
        while not stop.is_set():
            await writer.insert(0, f"<t{i}>")
            i += 1
            with anyio.move_on_after(0.05):  # an editor's pace
                await stop.wait()

    async with anyio.create_task_group() as tg:
        tg.start_soon(type_along)
        try:
            yield
        finally:
            stop.set()


async def _slow_consumer_closes(server: CollabServer) -> float:
    async with httpx.AsyncClient(timeout=5) as client:
        text = (await client.get(server.http_url + "/metrics")).text
    for line in text.splitlines():
        if line.startswith("collab_slow_consumer_closes_total "):
            return float(line.split()[1])
    return 0.0


# --- a document larger than the outbound queue (issue 8 item 14) ----------------------------

PART = 7_500_000  # characters per update: four make a 30 MB document (ws_max_size is 16 MiB)


# long: one scenario (build, a joiner in a busy room, then measured joiners) read top to bottom
async def test_a_doc_larger_than_the_outbound_queue_opens_for_fast_and_slow_clients(
    server_factory: Callable[..., CollabServer],
) -> None:
    # send_timeout 2 s: the slow reader below takes longer than that to drain its initial
    # sync, and a frame queued behind it waits that long (uvicorn makes the next send wait).
    server = server_factory(send_timeout=2.0)
    proc = psutil.Process(server.pid)
    url = server.ws_url("huge", "doc")
    with anyio.fail_after(240):
        writer = await RawPeer.connect(url)
        # Present, as every y-websocket editor is: a joiner is greeted with its awareness.
        await writer.websocket.send(_presence(writer, 1))
        for i in range(4):
            await writer.insert(len(str(writer.text)), chr(ord("a") + i) * PART)
        await writer.request_saved(1)
        await writer.wait_for(lambda: writer.saved >= 1, 120)
        size = len(str(writer.text))
        # 1. A real y-websocket client opens it, as a new user would, while the writer types:
        # relays are in flight when its initial sync is released (this closed it 1013).
        async with JsPeer(server.ws_base, "huge/doc", server.params, timeout=60) as js:
            async with typing_along(writer):
                await js.call({"op": "digest", "at_least": size, "timeout_ms": 60_000})
            final = str(writer.text)
            got = await js.call({"op": "digest", "length": len(final)})
            assert got["sha256"] == _sha(final)
            assert (await js.call({"op": "info"}))["closes"] == []
        await writer.request_saved(2)  # the typing is committed: the store is quiet again
        await writer.wait_for(lambda: writer.saved >= 2, 60)
        # 2. Measured: another room's round trips and the server's memory while a second
        # y-websocket client and then a client on a slow link open the 30 MB doc.
        ping_a = await RawPeer.connect(server.ws_url("other", "d"))
        ping_b = await RawPeer.connect(server.ws_url("other", "d"))
        baseline = proc.memory_info().rss
        peak = baseline
        round_trips: list[float] = []
        done = anyio.Event()

        async def sample_rss() -> None:
            nonlocal peak
            while not done.is_set():
                peak = max(peak, proc.memory_info().rss)
                await anyio.sleep(0.01)

        async def measure_other_room() -> None:
            i = 0
            while not done.is_set():
                started = time.monotonic()
                await ping_a.insert(0, "p")
                i += 1
                await ping_b.wait_for(lambda n=i: len(str(ping_b.text)) >= n, 5)
                round_trips.append(time.monotonic() - started)
                await anyio.sleep(0.05)

        async with anyio.create_task_group() as tg:
            tg.start_soon(sample_rss)
            tg.start_soon(measure_other_room)
            async with JsPeer(server.ws_base, "huge/doc", server.params, timeout=60) as js:
                got = await js.call({"op": "digest", "length": len(final), "timeout_ms": 60_000})
                assert got["sha256"] == _sha(final)
            # ~6 MB/s: a presence change queued behind its initial sync waits longer than
            # send_timeout for the bytes to drain; it must not be closed for that.
            slow = await PacedPeer.connect(url)
            await slow.send(framing.sync_step1(b"\x00"))
            tg.start_soon(slow.pump, 6e6)
            await slow.wait_for(lambda: slow.received > 5 * MB, 20)
            await writer.websocket.send(_presence(writer, 2))
            await slow.wait_for(lambda: slow.close_code is not None or slow.frames >= 4, 60)
            assert slow.close_code is None
            assert len(slow.text) == len(final) and _sha(str(slow.text)) == _sha(final)
            done.set()
            slow.abort()
        growth = peak - baseline
        print(
            f"\n30 MB doc: RSS baseline {baseline / MB:.0f} MB, peak +{growth / MB:.0f} MB; "
            f"other-room round trips n={len(round_trips)} max {max(round_trips) * 1000:.0f} ms "
            f"median {sorted(round_trips)[len(round_trips) // 2] * 1000:.0f} ms"
        )
        assert max(round_trips) < 1.0, f"a round trip in another room took {max(round_trips)}s"
        assert growth < 400 * MB, f"server RSS grew {growth / MB:.0f} MB"
        for peer in (writer, ping_a, ping_b):
            await peer.close()
    assert "Traceback" not in server.log()


def _presence(peer: RawPeer, clock: int) -> bytes:
    entry = AwarenessEntry(peer.doc.client_id, clock, b'{"user":{"name":"writer"}}')
    return framing.awareness(encode_awareness([entry]))


# --- one send blocked past send_timeout (issue 8 item 18) -----------------------------------


async def test_a_send_blocked_past_send_timeout_closes_1013_within_about_send_timeout(
    server_factory: Callable[..., CollabServer],
) -> None:
    # A queue far larger than the traffic: only the send timeout can catch the stalled reader.
    send_timeout = 1.0
    server = server_factory(send_timeout=send_timeout, outbound_queue_bytes=1024 * MB)
    url = server.ws_url("stalled", "d")
    with anyio.fail_after(60):
        stalled = await PacedPeer.connect(url, rcvbuf=4096)
        await stalled.send(framing.sync_step1(b"\x00"))  # then never reads again
        writer = await RawPeer.connect(url)
        chunk = "z" * MB
        for _ in range(12):  # 24 MB of relays, far past what the socket buffers absorb
            await writer.insert(0, chunk)
            await writer.delete(0, len(chunk))
        # The sender is blocked by now (a few MB fill the buffers); the close follows within
        # about send_timeout, counted when the server decides (its close frame cannot go out).
        started = time.monotonic()
        with anyio.fail_after(send_timeout + 3.0):
            while await _slow_consumer_closes(server) < 1:
                await anyio.sleep(0.05)  # polling /metrics
        print(f"\nstalled reader closed {time.monotonic() - started:.2f}s after the flood")
        stalled.abort()
        await writer.close()
