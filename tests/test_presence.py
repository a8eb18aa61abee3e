"""Presence over real sockets (docs/awareness.md): the server stamps ``user`` from the
authenticated principal and clears a ``typing`` nobody refreshed, as y-websocket clients
(tests/js/peer.mjs) and raw peers see it. The rules in process: tests/sync/test_presence.py."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from collab.sync.stamps import derived_color
from tests.support.frames import awareness_frame, awareness_states
from tests.support.jspeer import JsPeer
from tests.support.rawpeer import RawPeer
from tests.support.server import CollabServer, ServerFactory
from tests.support.waiting import wait_until

pytestmark = pytest.mark.anyio

ROOM = "team"


class Users:
    """Two members of ROOM: alice (editor) and bob (commenter), their ids and tokens."""

    def __init__(self, server: CollabServer) -> None:
        self.server = server
        self.alice_token = server.mint_token("alice", ROOM, "editor")
        self.bob_token = server.mint_token("bob", ROOM, "commenter")
        self.alice_id = server.create_user("alice")  # the same row the token was minted for
        self.bob_id = server.create_user("bob")

    def js(self, token: str, doc: str = "chat") -> JsPeer:
        return JsPeer(self.server.ws_base, f"{ROOM}/{doc}", {"token": token})

    async def raw(self, token: str, doc: str = "chat") -> RawPeer:
        return await RawPeer.connect(self.server.ws_url(ROOM, doc, token=token))


def state_of(peer: JsPeer, client: int | None) -> Callable[[], Awaitable[Any]]:
    """What ``peer``'s y-websocket Awareness holds for ``client`` (None: absent)."""

    async def read() -> Any:
        assert client is not None
        return (await peer.states()).get(client)

    return read


async def until_state(
    peer: JsPeer, client: int | None, check: Callable[[Any], bool], timeout: float = 10
) -> Any:
    read = state_of(peer, client)
    last: list[Any] = [None]

    async def holds() -> bool:
        last[0] = await read()
        return check(last[0])

    await wait_until(holds, timeout, interval=0.05, what=lambda: last[0])
    return last[0]


def typing(value: object) -> Callable[[Any], bool]:
    return lambda state: isinstance(state, dict) and state.get("typing") == value


def raw_states(peer: RawPeer, client: int) -> list[tuple[int, Any]]:
    """Every (clock, state) ``peer`` was sent for ``client``, in order."""
    return [
        (clock, state)
        for frame in peer.awareness_frames
        for c, clock, state in awareness_states(frame)
        if c == client
    ]


def typing_states(peer: RawPeer, client: int) -> list[Any]:
    return [state for _, state in raw_states(peer, client) if state and "typing" in state]


# -- user --------------------------------------------------------------------------------


@pytest.mark.parametrize("doc", ["notes", "chat"])
async def test_a_claimed_user_is_replaced_by_the_senders_own(
    server: CollabServer, doc: str
) -> None:
    users = Users(server)
    if doc != "chat":  # a commenter may open only a doc that exists: an editor writes it first
        writer = await users.raw(users.alice_token, doc)
        await writer.insert(0, "hello")
        await writer.request_saved(1)
        await writer.wait_for(lambda: writer.saved == 1)
        await writer.close()
    async with users.js(users.alice_token, doc) as alice, users.js(users.bob_token, doc) as bob:
        await alice.wait_event("synced")
        await bob.wait_event("synced")
        # Alice claims to be Bob; her colour is a valid hex colour and is kept.
        claim = {"user": {"id": users.bob_id, "name": "bob", "handle": "bob", "color": "#1a2b3c"}}
        await alice.call({"op": "awareness", "state": {**claim, "cursor": 5}})
        seen = await until_state(bob, alice.client_id, lambda s: s is not None)
        own = {"id": users.alice_id, "name": "alice", "color": "#1a2b3c"}
        assert seen == {"user": own, "cursor": 5}
        # A newcomer is told the stamped state on join.
        newcomer = await users.raw(users.bob_token, doc)
        await newcomer.wait_for(lambda: raw_states(newcomer, alice.client_id or 0))
        assert raw_states(newcomer, alice.client_id or 0)[-1][1] == seen
        await newcomer.close()
        # No colour, or not a #rrggbb one: one derived from the user id.
        await alice.call({"op": "awareness", "state": {"user": {"color": "red"}}})
        seen = await until_state(bob, alice.client_id, lambda s: "cursor" not in s)
        assert seen == {"user": {**own, "color": derived_color(users.alice_id)}}
        await alice.call({"op": "awareness", "state": {"typing": False}})
        seen = await until_state(bob, alice.client_id, lambda s: "typing" in s)
        assert seen == {"typing": False, "user": {**own, "color": derived_color(users.alice_id)}}


# -- typing ------------------------------------------------------------------------------


async def test_typing_goes_stale_after_five_seconds_without_refresh(server: CollabServer) -> None:
    users = Users(server)
    # Bob, a commenter, may not write the chat doc; his awareness is his to set all the same.
    async with users.js(users.alice_token) as alice, users.js(users.bob_token) as bob:
        await alice.wait_event("synced")
        await bob.wait_event("synced")
        started = time.monotonic()
        await bob.call({"op": "awareness", "state": {"typing": True}})
        await until_state(alice, bob.client_id, typing(True), 5)
        # The default timeout is 5 s: cleared once they are up, well within 8 s.
        cleared = await until_state(alice, bob.client_id, typing(False), 8)
        assert time.monotonic() - started >= 4.9
        assert cleared["user"]["id"] == users.bob_id
        # Bob's own Awareness took the server's state (newer clock) as his local state ...
        await until_state(bob, bob.client_id, typing(False), 5)
        # ... so his next state is numbered past it and accepted: typing in a thread.
        await bob.call({"op": "awareness", "state": {"typing": "thread-7"}})
        await until_state(alice, bob.client_id, typing("thread-7"), 5)


async def test_a_refresh_keeps_typing(server_factory: ServerFactory) -> None:
    server = server_factory(typing_timeout=1.5)
    users = Users(server)
    async with users.js(users.alice_token) as alice:
        bob = await users.raw(users.bob_token)
        client = alice.client_id
        assert client is not None
        await alice.wait_event("synced")
        state = {"typing": "thread-1", "user": {"name": "alice"}}
        for _ in range(8):  # 4 s of typing, refreshed every 0.5 s: more than twice the timeout
            await alice.call({"op": "awareness", "state": state})
            await anyio.sleep(0.5)  # the scenario: a typist's pace
        # (y-websocket announced its initial state, {}, on connect: the first one bob saw.)
        await bob.wait_for(lambda: len(typing_states(bob, client)) >= 8)
        assert all(s["typing"] == "thread-1" for s in typing_states(bob, client))
        # The refreshes stop: cleared within the timeout (and a sweep's grain).
        with anyio.fail_after(6):
            await bob.wait_for(lambda: raw_states(bob, client)[-1][1]["typing"] is False)
        clocks = [clock for clock, _ in raw_states(bob, client)]
        assert clocks == sorted(set(clocks))  # every state newer than the last
        await bob.close()


async def test_disconnect_removes_the_state(server: CollabServer) -> None:
    users = Users(server)
    async with users.js(users.bob_token) as bob:
        async with users.js(users.alice_token) as alice:
            await alice.call({"op": "awareness", "state": {"typing": True}})
            await until_state(bob, alice.client_id, typing(True))
            alice.kill()  # no awareness goodbye: the server removes her ids when the socket drops
            await alice.wait_killed()
            await until_state(bob, alice.client_id, lambda s: s is None)


# -- keep-alive --------------------------------------------------------------------------


async def test_a_change_goes_back_to_its_sender_stamped_and_its_echo_goes_nowhere(
    server: CollabServer,
) -> None:
    users = Users(server)
    with anyio.fail_after(20):
        alice = await users.raw(users.alice_token)
        bob = await users.raw(users.bob_token)
        await alice.websocket.send(awareness_frame((41, 1, {"cursor": 1})))
        for peer in (alice, bob):
            await peer.wait_for(lambda p=peer: raw_states(p, 41))
        assert raw_states(alice, 41) == raw_states(bob, 41)  # the stamped state, to both
        assert raw_states(alice, 41)[0][1]["user"]["id"] == users.alice_id
        # bob's y-websocket client sends it back (it echoes every remote change): old clock,
        # relayed to nobody; alice's next renewal still reaches both
        await bob.websocket.send(awareness_frame((41, 1, raw_states(bob, 41)[0][1])))
        await alice.websocket.send(awareness_frame((41, 2, {"cursor": 1})))
        for peer in (alice, bob):
            await peer.wait_for(lambda p=peer: len(raw_states(p, 41)) == 2)
        await anyio.sleep(0.3)
        assert [clock for clock, _ in raw_states(alice, 41)] == [1, 2]
        assert [clock for clock, _ in raw_states(bob, 41)] == [1, 2]
        await alice.close()
        await bob.close()


async def test_a_y_websocket_client_alone_in_a_doc_stays_connected(server: CollabServer) -> None:
    """y-websocket's client closes a socket on which nothing arrived for 30 s (its own 15 s
    awareness renewals coming back count): alone in a doc it reconnected every 30 s."""
    users = Users(server)
    async with users.js(users.alice_token, "notes-alone") as alice:
        await alice.wait_event("synced")
        with anyio.fail_after(45):
            await anyio.sleep(36)
        statuses = [e["status"] for e in alice.events if e.get("event") == "status"]
        assert statuses == ["connecting", "connected"], statuses


# -- hostile -----------------------------------------------------------------------------


async def close_code(url: str, frame: bytes) -> int | None:
    async with connect(url, max_size=None, open_timeout=10) as ws:
        try:
            await ws.send(frame)
            with anyio.fail_after(10):
                while True:
                    await ws.recv()
        except ConnectionClosed as closed:
            return closed.rcvd.code if closed.rcvd else None


@pytest.mark.parametrize(
    "frame",
    [
        awareness_frame((5, 1, b'{"typing":"' + b"x" * (1 << 20) + b'"}')),
        awareness_frame((5, 1, b'{"typing":true,"user":')),
        awareness_frame((5, 1, b'{"typing":' + b"[" * 100 + b"]" * 100 + b"}")),
        awareness_frame((5, 1, b'{"user":{"name":NaN}}')),
        awareness_frame((5, 1, b'"typing"')),
    ],
    ids=["1MB", "truncated", "deep", "nan", "not-an-object"],
)
async def test_hostile_states_are_still_refused(server: CollabServer, frame: bytes) -> None:
    users = Users(server)
    url = server.ws_url(ROOM, "chat", token=users.alice_token)
    assert await close_code(url, frame) == 1007


async def test_a_typing_flood_is_still_throttled(server_factory: ServerFactory) -> None:
    server = server_factory(awareness_per_second=4, awareness_burst=4, typing_timeout=1)
    users = Users(server)
    flooder = await users.raw(users.alice_token)
    bob = await users.raw(users.bob_token)
    started = time.monotonic()
    for clock in range(1, 201):
        state = {"typing": True if clock % 2 else f"thread-{clock}"}
        await flooder.websocket.send(awareness_frame((77, clock, state)))
    await flooder.request_saved(1)  # handled in order: every frame above reached the gate
    await flooder.wait_for(lambda: flooder.saved == 1)
    # Only each client's latest state survives the rate: the last one arrives ...
    with anyio.fail_after(10):
        await bob.wait_for(lambda: any(clock == 200 for clock, _ in raw_states(bob, 77)))
    elapsed = time.monotonic() - started
    relayed = raw_states(bob, 77)
    # ... after at most the burst plus the rate's share of the time taken (and the server's own
    # clear of the stale typing, one more).
    assert len(relayed) <= 4 + 4 * elapsed + 2, (len(relayed), elapsed)
    assert relayed[-1][1]["typing"] == "thread-200" or relayed[-1][1]["typing"] is False
    # The flooder's typing still goes stale and is cleared for everyone.
    with anyio.fail_after(6):
        await bob.wait_for(lambda: raw_states(bob, 77)[-1][1]["typing"] is False)
    await flooder.close()
    await bob.close()
