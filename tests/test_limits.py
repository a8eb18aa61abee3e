"""Each limit against a real server: the offender gets its code or stall and loses none of its
updates once it slows down; an honest client in the same room keeps a round trip under 1 s.
(Operations issue, Done means 1.)"""

from __future__ import annotations

import asyncio
import time

import anyio
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from tests.support.frames import awareness_frame, awareness_states
from tests.support.rawpeer import RawPeer, close_code_of
from tests.support.server import CollabServer, ServerFactory

pytestmark = pytest.mark.anyio


class Pinger:
    """Two honest peers in the offender's room, timing round trips while the offender acts."""

    def __init__(self, a: RawPeer, b: RawPeer) -> None:
        self.a, self.b = a, b
        self.worst = 0.0
        self.count = 0

    @classmethod
    async def start(cls, server: CollabServer, room: str, doc: str) -> Pinger:
        return cls(
            await RawPeer.connect(server.ws_url(room, doc)),
            await RawPeer.connect(server.ws_url(room, doc)),
        )

    async def ping(self) -> None:
        started = time.monotonic()
        marker = f"[ping{self.count}]"
        self.count += 1
        await self.a.insert(0, marker)
        await self.b.wait_for(lambda: marker in str(self.b.text), 5)
        self.worst = max(self.worst, time.monotonic() - started)

    async def ping_while(self, busy: asyncio.Task[object]) -> None:
        while not busy.done():
            await self.ping()
            await asyncio.sleep(0.1)  # pacing: an honest user's edits, timed
        await busy

    async def close(self) -> None:
        await self.a.close()
        await self.b.close()


def tokens_in(text: str, prefix: str) -> set[int]:
    return {int(t) for t in text.split(prefix)[1:] for t in [t.split(">")[0]] if t.isdigit()}


async def flood(peer: RawPeer, n: int, prefix: str, size: int = 0) -> None:
    pad = "." * size
    for k in range(n):
        await peer.insert(len(peer.text), f"{prefix}{k}>{pad}")


async def test_message_rate_stalls_the_offender_and_loses_nothing(
    server_factory: ServerFactory,
) -> None:
    server = server_factory(conn_messages_per_second=100, conn_message_burst=50)
    with anyio.fail_after(60):
        pinger = await Pinger.start(server, "lim", "d")
        offender = await RawPeer.connect(server.ws_url("lim", "d"))
        started = time.monotonic()
        await pinger.ping_while(asyncio.ensure_future(flood(offender, 300, "<m")))
        await offender.request_saved(1)
        await offender.wait_for(lambda: offender.saved == 1, 20)
        elapsed = time.monotonic() - started
        assert offender.close_code is None
        fresh = await RawPeer.connect(server.ws_url("lim", "d"))
        assert tokens_in(str(fresh.text), "<m") == set(range(300))
    assert elapsed > 2, "300 messages at 100/s should have been slowed down"
    assert pinger.worst < 1.0, f"honest round trip {pinger.worst:.2f}s"
    for peer in (offender, fresh):
        await peer.close()
    await pinger.close()


async def test_byte_rate_stalls_the_offender_and_loses_nothing(
    server_factory: ServerFactory,
) -> None:
    server = server_factory(conn_bytes_per_second=200_000, conn_byte_burst=100_000)
    with anyio.fail_after(60):
        pinger = await Pinger.start(server, "lim", "d")
        offender = await RawPeer.connect(server.ws_url("lim", "d"))
        started = time.monotonic()
        await pinger.ping_while(asyncio.ensure_future(flood(offender, 40, "<b", 20_000)))
        await offender.request_saved(1)
        await offender.wait_for(lambda: offender.saved == 1, 20)
        elapsed = time.monotonic() - started
        fresh = await RawPeer.connect(server.ws_url("lim", "d"))
        assert tokens_in(str(fresh.text), "<b") == set(range(40))
    assert elapsed > 2, "800 KB at 200 KB/s should have been slowed down"
    assert pinger.worst < 1.0, f"honest round trip {pinger.worst:.2f}s"
    for peer in (offender, fresh):
        await peer.close()
    await pinger.close()


async def test_a_long_stall_closes_1008_and_a_resync_loses_nothing(
    server_factory: ServerFactory,
) -> None:
    server = server_factory(
        conn_messages_per_second=50, conn_message_burst=20, conn_stall_seconds=1
    )
    with anyio.fail_after(60):
        pinger = await Pinger.start(server, "lim", "d")
        offender = await RawPeer.connect(server.ws_url("lim", "d"))
        await pinger.ping_while(asyncio.ensure_future(flood(offender, 400, "<s")))
        await offender.closed.wait()
        assert offender.close_code == 1008
        # y-websocket reconnects with its whole local doc; the sync exchange sends the rest.
        again = await RawPeer.connect(server.ws_url("lim", "d"), doc=offender.doc)
        fresh = await RawPeer.connect(server.ws_url("lim", "d"))
        await fresh.wait_for(lambda: tokens_in(str(fresh.text), "<s") == set(range(400)), 20)
    assert pinger.worst < 1.0, f"honest round trip {pinger.worst:.2f}s"
    for peer in (again, fresh):
        await peer.close()
    await pinger.close()


async def test_awareness_over_its_rate_keeps_only_the_latest_state(
    server_factory: ServerFactory,
) -> None:
    server = server_factory(awareness_per_second=5, awareness_burst=5)
    with anyio.fail_after(30):
        pinger = await Pinger.start(server, "aw", "d")
        watcher = pinger.b
        async with connect(server.ws_url("aw", "d")) as offender:

            async def cursor_storm() -> None:
                for clock in range(1, 201):
                    await offender.send(awareness_frame((777, clock, {"cursor": clock})))

            await pinger.ping_while(asyncio.ensure_future(cursor_storm()))

            def last_seen() -> int:
                for frame in reversed(watcher.awareness_frames):
                    for client, _clock, state in awareness_states(frame):
                        if client == 777 and state is not None:
                            return int(state["cursor"])
                return 0

            await watcher.wait_for(lambda: last_seen() == 200, 10)
        relayed = sum(1 for f in watcher.awareness_frames if b'"cursor"' in f)
    assert relayed < 60, f"{relayed} of 200 cursor states relayed past a 5/s budget"
    assert pinger.worst < 1.0
    await pinger.close()


async def test_connection_caps_refuse_before_accept(server_factory: ServerFactory) -> None:
    server = server_factory(max_connections_per_user=3, max_connections=5)
    with anyio.fail_after(30):
        mine = [await RawPeer.connect(server.ws_url("cap", "d")) for _ in range(3)]
        with pytest.raises(InvalidStatus) as refused:
            async with connect(server.ws_url("cap", "d")):
                pass
        assert refused.value.response.status_code == 429
        other = server.mint_token("olga", "cap", "editor")
        theirs = [await RawPeer.connect(server.ws_url("cap", "d", token=other)) for _ in range(2)]
        with pytest.raises(InvalidStatus) as full:
            async with connect(server.ws_url("cap", "d", token=other)):
                pass
        assert full.value.response.status_code == 503
        # Honest peers already in keep working.
        await mine[0].insert(0, "still here")
        await theirs[0].wait_for(lambda: "still here" in str(theirs[0].text))
        await mine[1].close()
        assert await close_code_of(server.ws_url("cap", "d")) is None  # a slot came back
        for peer in (mine[0], mine[2], *theirs):
            await peer.close()


async def test_rooms_loaded_cap_evicts_idle_docs_first(server_factory: ServerFactory) -> None:
    server = server_factory(max_rooms_loaded=2, room_idle_seconds=60)
    with anyio.fail_after(30):
        busy = await RawPeer.connect(server.ws_url("rl", "busy"))
        idle = await RawPeer.connect(server.ws_url("rl", "idle"))
        await idle.insert(0, "kept on disk")
        await idle.request_saved(1)
        await idle.wait_for(lambda: idle.saved == 1)
        assert await close_code_of(server.ws_url("rl", "third")) == 1013  # both in use
        await idle.close()  # "idle" now only waits for its idle timer
        third = await RawPeer.connect(server.ws_url("rl", "third"))  # evicts "idle" at once
        await third.close()
        back = await RawPeer.connect(server.ws_url("rl", "idle"))  # evicts "third"
        assert str(back.text) == "kept on disk"
        for peer in (busy, back):
            await peer.close()
