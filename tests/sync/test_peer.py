"""Peer's outbound queue and sender in-process, over a fake socket the test slows or stalls.

The fake behaves like uvicorn's WebSocket: a send returns once its bytes are handed over, and
*waits* while earlier bytes have not drained (``drain_seconds`` per byte handed over).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import anyio
import pytest

from collab.sync.peer import GONE, SLOW_CONSUMER, Peer

pytestmark = pytest.mark.anyio

CAP = 1000


class FakeSocket:
    """Drains ``rate`` bytes a second once unstalled; a send waits for the earlier bytes."""

    def __init__(self, rate: float = 1e9) -> None:
        self.rate = rate
        self.stalled = asyncio.Event()  # set: nothing drains at all
        self.sent: list[bytes] = []
        self.closed_with: tuple[int, str | None] | None = None
        self._drained_at = 0.0

    async def send_bytes(self, data: bytes) -> None:
        loop = asyncio.get_running_loop()
        while self.stalled.is_set():
            await asyncio.sleep(0.01)
        if self._drained_at > loop.time():
            await asyncio.sleep(self._drained_at - loop.time())
        self.sent.append(data)
        self._drained_at = max(self._drained_at, loop.time()) + len(data) / self.rate

    async def close(self, code: int = 1000, reason: str | None = None) -> None:
        self.closed_with = (code, reason)


def peer_on(socket: FakeSocket, send_timeout: float = 0.2) -> Peer:
    return Peer(socket, max_queue_bytes=CAP, send_timeout=send_timeout)


async def test_the_initial_sync_is_admitted_beyond_the_cap_once() -> None:
    peer = peer_on(FakeSocket())  # sender not running: everything stays queued
    peer.send(b"s" * 10)
    peer.send_initial(b"D" * (5 * CAP))
    assert not peer.closing and peer.queued_bytes == 10 + 5 * CAP
    peer.send(b"r" * (CAP - 10))  # what follows counts as always: up to the cap...
    assert not peer.closing
    peer.send(b"r")  # ...and not one byte past it
    assert peer.close_code == 1013 and peer.close_reason == SLOW_CONSUMER
    again = peer_on(FakeSocket())
    again.send(b"s" * 10)
    again.send_initial(b"D" * 10)
    again.send_initial(b"D" * (5 * CAP))  # a second full-state answer is an ordinary frame
    assert again.close_code == 1013


async def test_a_slow_reader_gets_time_in_proportion_to_the_initial_sync() -> None:
    # 5 caps of initial sync at 2 caps a second: 2.5 s to drain, send_timeout 0.2 s.
    # The grace is send_timeout per cap (1 s) on top of send_timeout: 1.2 s. Too little:
    socket = FakeSocket(rate=2 * CAP)
    peer = peer_on(socket, send_timeout=0.2)
    sender = asyncio.get_running_loop().create_task(peer.run_sender())
    peer.send_initial(b"D" * (5 * CAP))
    peer.send(b"relay")
    with anyio.fail_after(5):
        await peer.closed.wait()
        await sender
    assert peer.close_code == 1013
    # 5 caps at 10 caps a second: 0.5 s, within the grace though past send_timeout.
    socket = FakeSocket(rate=10 * CAP)
    peer = peer_on(socket, send_timeout=0.2)
    sender = asyncio.get_running_loop().create_task(peer.run_sender())
    peer.send_initial(b"D" * (5 * CAP))
    peer.send(b"relay")
    with anyio.fail_after(5):
        while len(socket.sent) < 2:
            await asyncio.sleep(0.01)
    assert not peer.closing and socket.sent[1] == b"relay"
    peer.close(1000)
    await sender


async def test_a_send_blocked_past_send_timeout_closes_1013_within_about_send_timeout() -> None:
    socket = FakeSocket()
    peer = Peer(socket, max_queue_bytes=1 << 30, send_timeout=0.3)  # the cap never trips
    sender = asyncio.get_running_loop().create_task(peer.run_sender())
    peer.send(b"first")
    with anyio.fail_after(2):
        while not socket.sent:
            await asyncio.sleep(0.01)
    socket.stalled.set()
    loop = asyncio.get_running_loop()
    started = loop.time()
    peer.send(b"blocked")
    with anyio.fail_after(2):
        await peer.closed.wait()
    took = loop.time() - started
    assert peer.close_code == 1013 and 0.25 <= took < 0.8, took
    await sender


async def test_sends_each_quicker_than_send_timeout_are_never_slow_however_many() -> None:
    # Each send waits about 0.1 s for the one before it to drain, send_timeout is 0.3 s: the
    # watchdog (armed by the first send) finds later sends in flight at its deadline, looks
    # again at theirs, and never closes, over a stream four deadlines long.
    socket = FakeSocket(rate=1000)
    peer = Peer(socket, max_queue_bytes=1 << 30, send_timeout=0.3)
    sender = asyncio.get_running_loop().create_task(peer.run_sender())
    frames = [bytes([n]) * 100 for n in range(12)]
    for frame in frames:
        peer.send(frame)
    with anyio.fail_after(5):
        while len(socket.sent) < len(frames):
            await asyncio.sleep(0.01)
    assert not peer.closing and socket.sent == frames
    peer.close(1000)
    with anyio.fail_after(2):
        await sender
    assert socket.closed_with == (1000, "")


async def test_a_sender_cancelled_by_others_stays_cancelled() -> None:
    socket = FakeSocket()
    socket.stalled.set()
    peer = Peer(socket, max_queue_bytes=1 << 30, send_timeout=0.2)
    sender = asyncio.get_running_loop().create_task(peer.run_sender())
    peer.send(b"blocked")
    with anyio.fail_after(2):
        while peer.queued_bytes:  # taken from the queue: the send is in flight
            await asyncio.sleep(0.01)
    sender.cancel()
    with pytest.raises(asyncio.CancelledError), anyio.fail_after(2):
        await sender
    await asyncio.sleep(0.3)  # nothing to wait for: past the send's deadline, nothing fired
    assert not peer.closing and socket.closed_with is None


class WritableSocket(FakeSocket):
    """Also offers the server's synchronous write (WRITE_NOW), refused while ``paused``."""

    def __init__(self) -> None:
        super().__init__()
        self.paused = False
        self.written: list[bytes] = []

    def write_now(self, data: bytes) -> bool:
        if self.paused:
            return False
        self.written.append(data)
        return True


def sending(peer: Peer) -> bool:
    """Whether a sender task runs (an idle socket has none)."""
    return peer._sender is not None


async def until(condition: Callable[[], bool]) -> None:
    with anyio.fail_after(5):
        while not condition():
            await asyncio.sleep(0.01)


async def test_an_idle_socket_has_no_sender_task_and_one_runs_only_while_frames_wait() -> None:
    socket = WritableSocket()
    peer = Peer(socket, max_queue_bytes=CAP, send_timeout=1.0)
    peer.start()
    peer.send(b"in place")
    assert socket.written == [b"in place"] and not sending(peer)
    socket.paused = True  # the transport takes nothing now: frames wait for a sender task
    peer.send(b"a")
    peer.send(b"b")
    assert sending(peer)
    socket.paused = False
    peer.send(b"c")  # a sender runs: queued behind a and b, not written past them
    await until(lambda: not sending(peer))  # drained: the task ended
    assert socket.sent == [b"a", b"b", b"c"] and peer.queued_bytes == 0
    peer.send(b"idle again")
    assert socket.written[-1] == b"idle again" and not sending(peer)
    peer.close(1000, "bye")  # an idle socket's close frame still goes
    with anyio.fail_after(5):
        await peer.stopped()
    assert socket.closed_with == (1000, "bye") and peer.closed.is_set()


async def test_a_socket_found_gone_while_idle_is_closed_without_a_frame() -> None:
    socket = WritableSocket()
    peer = Peer(socket, max_queue_bytes=CAP, send_timeout=1.0)
    peer.start()
    peer.close(GONE)
    await peer.stopped()
    assert peer.closed.is_set() and socket.closed_with is None and not sending(peer)


async def test_frames_queued_before_start_go_when_it_starts() -> None:
    socket = WritableSocket()
    peer = Peer(socket, max_queue_bytes=CAP, send_timeout=1.0)
    peer.send(b"greeting")
    assert socket.written == [] and peer.queued_bytes == len(b"greeting")
    peer.start()
    await until(lambda: socket.sent == [b"greeting"])
    peer.send(b"next")
    assert socket.written == [b"next"]


async def test_after_a_cancelled_sender_the_next_frames_and_close_still_go() -> None:
    """A sender cancelled by others (its caller shutting down) does not leave the peer
    thinking one still runs: later frames and the close frame start another."""
    socket = FakeSocket()
    socket.stalled.set()
    peer = Peer(socket, max_queue_bytes=1 << 30, send_timeout=5.0)
    peer.start()
    peer.send(b"blocked")
    await until(lambda: peer.queued_bytes == 0)  # in flight
    assert peer._sender is not None
    peer._sender.cancel()
    await until(lambda: not sending(peer))
    socket.stalled.clear()
    peer.send(b"after")
    await until(lambda: socket.sent == [b"after"])
    peer.close(1000, "bye")
    with anyio.fail_after(5):
        await peer.stopped()
    assert socket.sent == [b"after"] and socket.closed_with == (1000, "bye")


async def test_a_closing_peer_writes_nothing_in_place() -> None:
    """Nor a peer found gone, which has no sender task to stand in the way."""
    for code in (1000, GONE):
        socket = WritableSocket()
        peer = Peer(socket, max_queue_bytes=CAP, send_timeout=1.0)
        peer.start()
        peer.close(code, "bye")
        peer.send(b"after the close")
        with anyio.fail_after(5):
            await peer.stopped()
        assert socket.written == [] and socket.sent == []


async def test_frames_left_queued_by_a_cancelled_sender_are_not_overtaken_in_place() -> None:
    socket = WritableSocket()
    socket.stalled.set()
    socket.paused = True  # the transport takes nothing now: a and b wait for a sender
    peer = Peer(socket, max_queue_bytes=CAP, send_timeout=5.0)
    peer.start()
    peer.send(b"a")
    peer.send(b"b")
    await until(lambda: peer.queued_bytes == 1)  # a in flight, b queued
    assert peer._sender is not None
    peer._sender.cancel()  # its caller shutting down, say
    await until(lambda: not sending(peer))
    socket.paused = False
    socket.stalled.clear()
    peer.send(b"c")  # b still waits: c goes behind it, not in place before it
    await until(lambda: b"c" in socket.sent + socket.written)
    assert socket.written == [] and socket.sent == [b"b", b"c"]
