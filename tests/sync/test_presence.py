"""Presence in process: the ``user`` the server stamps and the ``typing`` it clears
(docs/awareness.md). The same rules over real sockets: tests/test_presence.py."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

import pytest

import collab.sync.presence as presence_module
from collab.auth.principal import Principal
from collab.sync.livedoc import LiveDoc
from collab.sync.peer import Peer
from collab.sync.presence import Presence
from collab.sync.stamps import derived_color, stamp
from collab.wire import AwarenessEntry
from tests.support.frames import awareness_frame, awareness_states
from tests.support.waiting import wait_until
from tests.sync.conftest import KEY, GatedStore, sent, settings

ALICE = Principal(user_id="u-alice", name="Alice", via="session")
BOB = Principal(user_id="u-bob", name="Bob", via="room_token")


def entry(client: int, clock: int, state: dict[str, Any] | None) -> AwarenessEntry:
    return AwarenessEntry(client, clock, None if state is None else json.dumps(state).encode())


def parsed(entries: list[AwarenessEntry]) -> list[tuple[int, int, Any]]:
    return [(e.client, e.clock, e.state and json.loads(e.state)) for e in entries]


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_user_is_stamped_from_the_principal_whatever_the_client_claims() -> None:
    presence = Presence()
    claim = {"user": {"id": "u-bob", "name": "Bob", "handle": "bob", "x": 1}, "cursor": 3}
    (out,) = presence.apply(1, ALICE.user_id, [entry(7, 1, claim)], ALICE)
    user = {"id": "u-alice", "name": "Alice", "color": derived_color("u-alice")}
    assert parsed([out]) == [(7, 1, {"user": user, "cursor": 3})]
    assert presence.snapshot() == [out]  # a newcomer is told the stamped state
    # A valid #rrggbb colour of the client's is kept; anything else is replaced.
    colours = [("#A1b2C3", True), ("#abc", False), ("red", False), (7, False), ("#a1b2c3 ", False)]
    for clock, (color, kept) in enumerate(colours, start=2):
        state = {"user": {"color": color}}
        (out,) = presence.apply(1, ALICE.user_id, [entry(7, clock, state)], ALICE)
        want = color if kept else derived_color("u-alice")
        assert json.loads(out.state or b"")["user"]["color"] == want
    # No user at all: one is added. Without a principal (in-process only), nothing is stamped.
    assert stamp(b'{"a":1}', BOB).state.startswith(b'{"a":1,"user":{"id":"u-bob","name":"Bob"')
    assert stamp(b'{"a":1}', None).state == b'{"a":1}'


@dataclass(frozen=True)
class HandledPrincipal(Principal):
    """A principal that knows the user's handle (users gain handles with issue 9)."""

    handle: str | None = None


def test_the_handle_is_stamped_once_the_principal_has_one() -> None:
    ada = HandledPrincipal(user_id="u-ada", name="Ada", via="session", handle="ada")
    user = json.loads(stamp(b'{"user":{"handle":"root"}}', ada).state)["user"]
    assert user == {"id": "u-ada", "name": "Ada", "handle": "ada", "color": derived_color("u-ada")}
    nameless = HandledPrincipal(user_id="u-x", name="", via="room_token", handle="")
    user = json.loads(stamp(b'{"user":{"handle":"root"}}', nameless).state)["user"]
    assert user == {"id": "u-x", "name": "", "color": derived_color("u-x")}


def test_derived_colours_are_stable_hex_and_differ_between_users() -> None:
    colours = {derived_color(f"user-{i}") for i in range(50)}
    assert all(len(c) == 7 and c.startswith("#") and int(c[1:], 16) >= 0 for c in colours)
    assert len(colours) > 25
    assert derived_color("u-alice") == derived_color("u-alice")


def test_a_renewal_is_not_stamped_again(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[bytes] = []

    def counting(state: bytes, principal: Principal | None) -> Any:
        calls.append(state)
        return stamp(state, principal)

    monkeypatch.setattr(presence_module, "stamp", counting)
    presence = Presence()
    state = {"user": {"name": "me"}, "typing": False}
    first = presence.apply(1, ALICE.user_id, [entry(7, 1, state)], ALICE)
    renewed = presence.apply(1, ALICE.user_id, [entry(7, 2, state)], ALICE)
    assert len(calls) == 1 and renewed[0].state is first[0].state and renewed[0].clock == 2
    presence.apply(1, ALICE.user_id, [entry(7, 3, {**state, "typing": True})], ALICE)
    assert len(calls) == 2  # a changed state is stamped
    # The same user's next socket takes the id over with its own principal: stamped anew.
    renamed = Principal(user_id="u-alice", name="Alice B.", via="session")
    (out,) = presence.apply(2, ALICE.user_id, [entry(7, 4, {**state, "typing": True})], renamed)
    assert len(calls) == 3 and json.loads(out.state or b"")["user"]["name"] == "Alice B."


def test_ownership_rules_still_hold() -> None:
    presence = Presence()
    presence.apply(1, ALICE.user_id, [entry(7, 5, {"typing": True})], ALICE)
    # Another principal can neither set nor remove the id, whatever user it claims.
    claim = {"user": {"id": "u-alice"}, "typing": "evil"}
    assert presence.apply(2, BOB.user_id, [entry(7, 9, claim), entry(7, 10, None)], BOB) == []
    assert presence.apply(1, ALICE.user_id, [entry(7, 5, {"typing": "echo"})], ALICE) == []
    assert len(presence) == 1
    # At most four ids per socket; removing an unknown id is nothing to relay.
    more = [entry(c, 1, {"typing": True}) for c in (20, 21, 22, 23)] + [entry(24, 1, None)]
    assert [e.client for e in presence.apply(1, ALICE.user_id, more, ALICE)] == [20, 21, 22]
    assert parsed(presence.apply(1, ALICE.user_id, [entry(20, 2, None)], ALICE)) == [(20, 2, None)]
    assert sorted(parsed(presence.remove_peer(1))) == [(7, 6, None), (21, 2, None), (22, 2, None)]
    assert presence.next_typing_deadline() is None


def test_stale_typing_is_cleared_once_and_a_refresh_keeps_it() -> None:
    clock = FakeClock()
    presence = Presence(typing_timeout=5.0, clock=clock)
    assert presence.next_typing_deadline() is None
    presence.apply(1, ALICE.user_id, [entry(7, 1, {"typing": True, "cursor": 1})], ALICE)
    presence.apply(2, BOB.user_id, [entry(8, 1, {"typing": "thread-42"})], BOB)
    presence.apply(2, BOB.user_id, [entry(9, 1, {"typing": 1, "t": ""})], BOB)  # not typing
    assert presence.next_typing_deadline() == 1005.0
    clock.now = 1003.0  # Alice refreshes (a new clock, the same state) before her 5 s are up
    presence.apply(1, ALICE.user_id, [entry(7, 2, {"typing": True, "cursor": 1})], ALICE)
    assert presence.next_typing_deadline() == 1005.0  # Bob's
    clock.now = 1004.9
    assert presence.expire_typing() == []
    clock.now = 1005.0
    (cleared,) = presence.expire_typing()
    bob_user = {"id": "u-bob", "name": "Bob", "color": derived_color("u-bob")}
    assert parsed([cleared]) == [(8, 2, {"typing": False, "user": bob_user})]
    assert presence.expire_typing() == []  # once
    assert presence.next_typing_deadline() == 1008.0  # Alice's, from her refresh
    clock.now = 1008.0
    assert [e.client for e in presence.expire_typing()] == [7]
    assert presence.next_typing_deadline() is None
    snapshot = {e.client: json.loads(e.state or b"") for e in presence.snapshot()}
    assert snapshot[7]["typing"] is False and snapshot[8]["typing"] is False
    # The echo of the cleared state (its clock) changes nothing; the owner's next state does,
    # and a refresh of the same "typing" state after the clear says typing again.
    assert presence.apply(2, BOB.user_id, [entry(8, 2, {"typing": False})], BOB) == []
    (again,) = presence.apply(2, BOB.user_id, [entry(8, 3, {"typing": "thread-42"})], BOB)
    assert json.loads(again.state or b"")["typing"] == "thread-42"
    assert presence.next_typing_deadline() == 1013.0


# -- one sweep per doc, through LiveDoc -----------------------------------------------------


def peer_of(principal: Principal) -> Peer:
    return Peer(None, max_queue_bytes=1 << 20, send_timeout=1.0, principal=principal)


def awareness_sent(peer: Peer) -> list[tuple[int, int, Any]]:
    return [e for f in sent(peer) if f[0] == 1 for e in awareness_states(f)]


def typing_sweep(live: LiveDoc) -> asyncio.TimerHandle | None:
    return live.typing_sweep.timer


@pytest.mark.anyio
async def test_livedoc_clears_stale_typing_for_everyone_with_one_timer() -> None:
    live = await LiveDoc.load(KEY, GatedStore(), settings(typing_timeout=0.3))
    alice, bob = peer_of(ALICE), peer_of(BOB)
    await live.join(alice)
    await live.join(bob)
    await live.handle(alice, awareness_frame((7, 1, {"typing": True})))
    await live.handle(bob, awareness_frame((8, 1, {"typing": "t-1"}), (9, 1, {"typing": True})))
    sweep = typing_sweep(live)
    assert sweep is not None
    await live.handle(alice, awareness_frame((7, 2, {"typing": True})))  # a refresh
    assert typing_sweep(live) is sweep  # one timer for the doc, however many type
    stamped = awareness_sent(bob)[0]
    assert stamped[2]["user"]["id"] == "u-alice" and stamped[2]["typing"] is True
    await wait_until(lambda: len([e for e in awareness_sent(alice) if not e[2]["typing"]]) >= 3)
    # Everyone hears every clear, the owners too (their next clock moves past it).
    for peer in (alice, bob):
        cleared = {e[0]: e[1] for e in awareness_sent(peer) if e[2]["typing"] is False}
        assert cleared == {7: 3, 8: 2, 9: 2}
    assert typing_sweep(live) is None  # nobody types: no timer
    live.leave(alice)
    live.leave(bob)


@pytest.mark.anyio
async def test_awareness_held_back_is_dropped_once_the_server_closed_its_socket() -> None:
    """Awareness the rate gate held back is applied when its turn comes only if the server has
    not closed the socket meanwhile (removed from the room, a revoked session): such a socket
    stays among the doc's peers until its close handshake ends, and its held-back state must
    not reach anyone (found in review)."""
    live = await LiveDoc.load(
        KEY, GatedStore(), settings(awareness_per_second=20, awareness_burst=1)
    )
    alice, bob = peer_of(ALICE), peer_of(BOB)
    await live.join(alice)
    await live.join(bob)
    await live.handle(alice, awareness_frame((7, 1, {"cursor": 1})))  # applied at once
    await live.handle(alice, awareness_frame((7, 2, {"cursor": 2})))  # held: over the burst
    alice.close(4403, "removed from room")  # follow_role; the read loop has not ended yet
    await asyncio.sleep(0.2)  # the gate's timer fires (1/20 s)
    clocks = [clock for client, clock, _ in awareness_sent(bob) if client == 7]
    assert clocks == [1]  # not 2: the socket was closed before its turn
    live.leave(alice)
    live.leave(bob)
