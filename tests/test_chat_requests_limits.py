"""Chat requests (type 101) under attack on a real server: invalid requests are answered and the
socket stays; malformed frames close it with their code; floods are answered ``rate_limited``
(the socket's own message rate still applies); and nobody else waits on a flooder."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import pytest
from websockets.exceptions import ConnectionClosed

from tests.api.conftest import Api, assert_error
from tests.support.rawpeer import RawPeer
from tests.support.server import CollabServer, ServerFactory
from tests.test_chat_requests import chat_socket, ok, refused

pytestmark = pytest.mark.anyio


async def test_invalid_requests_are_answered_and_the_socket_stays(
    server_factory: ServerFactory,
) -> None:
    server = server_factory(max_message_length=100)
    api = Api(server)
    room = api.room("r")
    a = await chat_socket(server, room, api.dev.token)
    mine = ok(await a.ask({"op": "post", "client_id": "m1", "text": "mine"}), "m1")
    gone = ok(await a.ask({"op": "post", "client_id": "m2", "text": "gone"}), "m2")
    ok(await a.ask({"op": "delete", "client_id": "m3", "id": gone["id"]}), "m3")
    cases: list[tuple[dict[str, Any], str]] = [
        ({"op": "shout", "client_id": "c"}, "bad_request"),
        ({"client_id": "c", "text": "no op"}, "bad_request"),
        ({"op": ["post"], "client_id": "c"}, "bad_request"),
        ({"op": "post", "text": "no client id"}, "bad_request"),
        ({"op": "post", "client_id": "has space", "text": "x"}, "bad_request"),
        ({"op": "post", "client_id": "c" * 129, "text": "x"}, "bad_request"),
        ({"op": "post", "client_id": "c", "text": 5}, "bad_request"),
        ({"op": "post", "client_id": "c", "text": "   "}, "bad_request"),
        ({"op": "post", "client_id": "c", "text": "x" * 101}, "too_large"),
        ({"op": "post", "client_id": "c", "text": "x", "thread": 7}, "bad_request"),
        ({"op": "post", "client_id": "c", "text": "x", "thread": "nope"}, "not_found"),
        ({"op": "edit", "client_id": "c", "text": "no id"}, "bad_request"),
        ({"op": "edit", "client_id": "c", "id": "nope", "text": "x"}, "not_found"),
        ({"op": "edit", "client_id": "c", "id": "é", "text": "x"}, "bad_request"),
        ({"op": "edit", "client_id": "c", "id": gone["id"], "text": "x"}, "conflict"),
        ({"op": "delete", "client_id": "c", "id": "nope"}, "not_found"),
        ({"op": "react", "client_id": "c", "id": mine["id"]}, "bad_request"),
        ({"op": "react", "client_id": "c", "id": mine["id"], "emoji": "a b"}, "bad_request"),
        ({"op": "unreact", "client_id": "c", "id": mine["id"], "emoji": ""}, "bad_request"),
        ({"op": "read", "client_id": "c"}, "bad_request"),
        ({"op": "read", "client_id": "c", "up_to": "1"}, "bad_request"),
        ({"op": "read", "client_id": "c", "up_to": True}, "bad_request"),
        ({"op": "read", "client_id": "c", "up_to": -1}, "bad_request"),
        ({"op": "read", "client_id": "c", "up_to": 2**63}, "bad_request"),
    ]
    for request, code in cases:
        seen = len(a.replies())
        await a.send_request(request)
        await a.wait_for(lambda seen=seen: len(a.replies()) > seen)
        reply = a.replies()[seen]
        refused(reply, code)
        echoed = request.get("client_id")
        assert reply["client_id"] == (echoed if echoed is None or len(echoed) <= 128 else None)
    ok(await a.ask({"op": "post", "client_id": "m4", "text": "x" * 100}), "m4")
    items = api.dev.http.get(f"/rooms/{room}/messages").json()["items"]
    assert [m["text"] for m in items] == ["mine", "", "x" * 100] and a.close_code is None
    await a.close()
    api.close()


def framed(body: bytes) -> bytes:
    return b"\x65" + _varuint(len(body)) + body


def _varuint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


BIG = json.dumps({"op": "post", "client_id": "c", "text": "x" * (6 * 100 + 4097)}).encode()
MALFORMED = [
    (b"\x65", 1002),  # no length
    (b"\x65\xff\xff", 1002),  # the length's varint cut short
    (b"\x65\x10{}", 1002),  # the length runs past the frame
    (b"\x65\x01{}", 1002),  # bytes after the string
    (framed(b"\xff\xfe{}"), 1007),  # not UTF-8
    (framed(b'{"op": "post"'), 1007),  # not JSON
    (framed(b'["post"]'), 1007),  # not an object
    (framed(b'{"op": {"a": {"b": {"c": {}}}}}'), 1007),  # deeper than 4
    (framed(b'{"op": "post", "n": NaN}'), 1007),  # not strict JSON
    (framed(BIG), 1009),  # past 6 * max_message_length + 4 KiB
]


async def test_malformed_frames_close_with_their_code(server_factory: ServerFactory) -> None:
    server = server_factory(max_message_length=100)
    for frame, code in MALFORMED:
        peer = await RawPeer.connect(server.ws_url("r", "chat", "collab=1"))
        await peer.websocket.send(frame)
        await peer.wait_for(lambda p=peer: p.closed.is_set())
        assert (frame[:12], peer.close_code) == (frame[:12], code)
        assert peer.replies() == []
    api = Api(server)
    assert api.dev.http.get("/rooms/r/messages").json()["items"] == []
    api.close()


async def test_a_flood_is_answered_rate_limited_and_spends_the_apis_bucket(
    server_factory: ServerFactory,
) -> None:
    server = server_factory(chat_write_burst=30, chat_write_rate=0.2)
    api = Api(server)
    room = api.room("r")
    a = await chat_socket(server, room, api.dev.token)
    for n in range(100):  # at once: past 16 in flight and past the user's 30
        await a.send_request({"op": "post", "client_id": f"f{n}", "text": f"flood {n}"})
    await a.wait_for(lambda: len(a.replies()) == 100, timeout=30)
    done = [r for r in a.replies() if "error" not in r]
    limited = [r for r in a.replies() if "error" in r]
    assert {r["error"]["code"] for r in limited} == {"rate_limited"}
    assert all(r["error"]["retry_after"] > 0 for r in limited)
    assert 16 <= len(done) <= 30 and a.close_code is None
    items = api.dev.http.get(f"/rooms/{room}/messages", params={"limit": 200}).json()["items"]
    assert sorted(m["id"] for m in items) == sorted(r["id"] for r in done)
    probe = {"op": "react", "client_id": "x", "id": "nope", "emoji": "👍"}
    while (reply := await a.ask(probe))["error"]["code"] == "not_found":
        pass  # until the bucket is empty (in-flight refusals spent nothing)
    assert reply["error"]["code"] == "rate_limited" and reply["error"]["retry_after"] > 1
    response = api.dev.http.post(f"/rooms/{room}/messages", json={"text": "x", "client_id": "h"})
    assert_error(response, 429, "rate_limited")  # the API's bucket and the socket's are one
    await a.close()
    api.close()


async def test_requests_count_against_the_sockets_message_rate(
    server_factory: ServerFactory,
) -> None:
    server = server_factory(conn_messages_per_second=5, conn_message_burst=20, conn_stall_seconds=1)
    a = await chat_socket(server, "r", server.dev_token)
    with anyio.fail_after(20), contextlib.suppress(ConnectionClosed):
        n = 0
        while not a.closed.is_set():
            await a.send_request({"op": "shout", "client_id": f"s{n}"})
            n += 1
            await asyncio.sleep(0.005)  # pacing: 200/s, far over the socket's 5/s
    # A send can fail on the closing socket before the reader has taken the close frame.
    await a.wait_for(lambda: a.closed.is_set())
    assert a.close_code == 1008


async def test_a_flooder_does_not_slow_anyone_else_down(server: CollabServer) -> None:
    api = Api(server)
    flooder, bob = api.user("flooder"), api.user("bob")
    room = api.room("r", owner=api.dev, **{flooder.user_id: "commenter", bob.user_id: "commenter"})
    f = await chat_socket(server, room, flooder.token)
    b = await chat_socket(server, room, bob.token)
    stop = asyncio.Event()

    async def round_trips(tag: str) -> float:
        worst = 0.0
        for n in range(5):
            started = time.perf_counter()
            with anyio.fail_after(1):
                ok(await b.ask({"op": "post", "client_id": f"{tag}{n}", "text": "hi"}), f"{tag}{n}")
            worst = max(worst, time.perf_counter() - started)
        return worst

    try:
        await _flooded_round_trips(f, b, round_trips, stop)
    finally:
        stop.set()
        for peer in (f, b):
            await peer.close()
        api.close()


async def _flooded_round_trips(
    f: RawPeer, b: RawPeer, round_trips: Callable[[str], Awaitable[float]], stop: asyncio.Event
) -> None:
    quiet = await round_trips("q")

    async def flood() -> None:
        n = 0
        with contextlib.suppress(ConnectionClosed):
            while not stop.is_set():
                await f.send_request({"op": "post", "client_id": f"f{n}", "text": "flood"})
                n += 1
                if n % 50 == 0:
                    await asyncio.sleep(0)  # let the test's own task run between batches

    task = asyncio.get_running_loop().create_task(flood())
    try:
        await f.wait_for(lambda: len(f.replies()) > 100)  # the flood is on
        flooded = await round_trips("b")
        print(
            f"\na post's round trip over 101, worst of 5: {quiet * 1000:.1f} ms alone, "
            f"{flooded * 1000:.1f} ms while another user floods 101s ({len(f.replies())} replies)"
        )
    finally:
        stop.set()
        await task
