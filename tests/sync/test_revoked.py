"""The notices one node acts on for the others, in-process over the memory stores: an ``access``
notice closes the sockets whose credential the MetaStore says ended, and no other (a notice is
never trusted on its own); ``room_gone`` closes a room only when the store agrees; the live
streams' ``feed`` notices are coalesced on the way out and mark the streams on the way in.
(tests/test_nodes_revoked.py and tests/test_nodes_feeds.py run them between real nodes.)"""

from __future__ import annotations

import time

import anyio
import pytest

from collab.auth.principal import Principal
from collab.fanout import ACCESS, FEED, ROLE, Notice
from collab.fanout.local import LocalFanout
from collab.meta import MetaStore, open_meta_store
from collab.names import DocKey
from collab.store.memory import MemoryStore
from collab.sync.feeds import COALESCE, Feed, FeedHub
from collab.sync.notices import PENDING_LIMIT, NoticeRouter
from collab.sync.peer import Peer
from collab.sync.registry import RoomRegistry
from collab.sync.revoked import AccessFollower
from tests.support.waiting import wait_until
from tests.sync.conftest import settings

pytestmark = pytest.mark.anyio


def closed_as(peer: Peer) -> tuple[int | None, str | None]:
    return peer.close_code, peer.close_reason


def peer_of(principal: Principal) -> Peer:
    return Peer(None, max_queue_bytes=1 << 20, send_timeout=1.0, principal=principal)


async def user(meta: MetaStore, name: str) -> str:
    made = await meta.upsert_oidc_user(
        "test", name, name=name, email=None, email_verified=False, picture=None
    )
    return made.id


async def test_an_access_notice_closes_only_the_sockets_whose_credential_ended() -> None:
    meta = open_meta_store("memory://")
    await meta.open()
    alice, bob = await user(meta, "alice"), await user(meta, "bob")
    await meta.create_room("team", "Team", alice)
    session, _ = await meta.create_session(alice, 3600)
    other_session, _ = await meta.create_session(alice, 3600)
    token, _ = await meta.create_api_token(alice, "t")
    registry = RoomRegistry(MemoryStore(), settings())
    follower = AccessFollower(registry, meta, NoticeRouter(LocalFanout()), interval=3600)
    by_session = peer_of(Principal(alice, "a", "session", session_id=session.id))
    by_other = peer_of(Principal(alice, "a", "session", session_id=other_session.id))
    by_token = peer_of(Principal(alice, "a", "api_token", token_id=token.id))
    by_room_token = peer_of(Principal(bob, "b", "room_token", jti="j1", room_scope="team"))
    bobs = peer_of(Principal(bob, "b", "api_token", token_id="not-alices"))
    live = await registry.acquire(DocKey("team", "d"))
    for peer in (by_session, by_other, by_token, by_room_token):
        await live.join(peer)
    registry.feeds.add(Feed(bob, bobs))
    # Nothing ended yet: a notice (forged or early) closes nothing.
    assert await follower.recheck(follower.named("", alice)) == 0
    # The session revoked: only its socket closes, 4401 as on the revoking node.
    await meta.revoke_session(session.id)
    assert await follower.recheck(follower.named("", alice)) == 1
    assert (by_session.close_code, by_session.close_reason) == (4401, "session revoked")
    await meta.revoke_api_token(token.id, alice)
    assert await follower.recheck(follower.named("", alice)) == 1
    assert (by_token.close_code, by_token.close_reason) == (4401, "token revoked")
    # A room's tokens: a notice naming the room rechecks them, and nobody else's.
    assert follower.named("team", "") == [by_room_token]
    await meta.revoke_room_token("team", "j1", alice, time.time() + 60)
    assert await follower.recheck(follower.named("team", "")) == 1
    assert by_room_token.close_code == 4401
    # Disabled: every socket of the user, the live stream too.
    await meta.set_user_disabled(bob, True)
    assert await follower.recheck(follower.open_peers()) == 1
    assert (bobs.close_code, bobs.close_reason) == (4401, "user disabled")
    assert by_other.close_code is None


async def test_a_flood_of_access_notices_becomes_one_recheck_of_every_socket() -> None:
    meta = open_meta_store("memory://")
    await meta.open()
    alice = await user(meta, "alice")
    session, _ = await meta.create_session(alice, 3600)
    registry = RoomRegistry(MemoryStore(), settings())
    follower = AccessFollower(registry, meta, NoticeRouter(LocalFanout()), interval=3600)
    peer = peer_of(Principal(alice, "a", "session", session_id=session.id))
    live = await registry.acquire(DocKey("team", "d"))
    await live.join(peer)
    await follower.start()
    try:
        await meta.revoke_session(session.id)
        # Notices naming other users (forged, or a burst): past the bound, the follower
        # forgets them and rechecks every socket once instead, which finds alice's.
        for n in range(PENDING_LIMIT + 1):
            follower.on_notice(Notice(ACCESS, "", f"user-{n}"))
        await wait_until(lambda: follower.rechecks >= 1, timeout=10)
        assert closed_as(peer) == (4401, "session revoked")
    finally:
        await follower.stop()


async def test_a_room_gone_notice_closes_the_room_only_when_the_store_agrees() -> None:
    meta = open_meta_store("memory://")
    await meta.open()
    alice = await user(meta, "alice")
    await meta.create_room("team", "Team", alice)
    registry = RoomRegistry(MemoryStore(), settings())
    follower = AccessFollower(registry, meta, NoticeRouter(LocalFanout()), interval=3600)
    peer = peer_of(Principal(alice, "a", "api_token", token_id="t"))
    live = await registry.acquire(DocKey("team", "d"))
    await live.join(peer)
    await follower.room_gone("team")  # a forged or stale notice: the room is there
    assert peer.close_code is None
    await meta.delete_room("team")
    await follower.room_gone("team")
    assert closed_as(peer) == (4404, "room deleted")


async def test_feed_notices_are_coalesced_out_and_mark_streams_in() -> None:
    sent: list[Notice] = []
    hub = FeedHub(sent.append)
    for _ in range(100):  # a flood of posts in one room, and a user's list changing
        hub.room_changed("team", everywhere=True)
        hub.user_changed("u1", everywhere=True)
    hub.room_changed("team")  # presence: this node's own
    await anyio.sleep(COALESCE * 3)
    assert sent == [Notice(FEED, "team", ""), Notice(FEED, "", "u1")]
    assert hub.announced == 2
    # The receiving node's hub marks its streams as its own signals would.
    other = FeedHub()
    feed = Feed("u2", peer_of(Principal("u2", "u2", "api_token")))
    other.add(feed)
    other.watch(feed, {"team"})
    feed.reload = False
    other.on_notice(Notice(ROLE, "team", "u2"))  # not a feed notice: the role follower's
    assert feed.dirty == set()
    other.on_notice(Notice(FEED, "team", ""))
    assert feed.dirty == {"team"}
    other.on_notice(Notice(FEED, "", "u2"))
    assert feed.reload
