"""Disabled users lose their open sockets on the node's own recheck (``collab.sync.disabled``),
in-process over the memory stores: doc sockets and live streams, only the disabled user's, and
a failed round is logged and retried."""

from __future__ import annotations

import logging

import anyio
import pytest

from collab.auth.principal import Principal
from collab.meta import MetaStore, open_meta_store
from collab.names import DocKey
from collab.store.memory import MemoryStore
from collab.sync.disabled import DisabledUsers
from collab.sync.feeds import Feed
from collab.sync.peer import Peer
from collab.sync.registry import RoomRegistry
from tests.support.waiting import wait_until
from tests.sync.conftest import settings

pytestmark = pytest.mark.anyio


def peer_of(user_id: str) -> Peer:
    principal = Principal(user_id=user_id, name=user_id, via="api_token")
    return Peer(None, max_queue_bytes=1 << 20, send_timeout=1.0, principal=principal)


async def user(meta: MetaStore, name: str) -> str:
    made = await meta.upsert_oidc_user(
        "test", name, name=name, email=None, email_verified=False, picture=None
    )
    return made.id


async def test_a_recheck_closes_every_socket_of_a_disabled_user_and_no_other() -> None:
    meta = open_meta_store("memory://")
    await meta.open()
    alice, bob = await user(meta, "alice"), await user(meta, "bob")
    registry = RoomRegistry(MemoryStore(), settings())
    checker = DisabledUsers(registry, meta, interval=60)
    assert await checker.recheck() == 0  # no socket open: nothing to ask
    alices = [peer_of(alice) for _ in range(3)]
    bobs = peer_of(bob)
    for n, peer in enumerate([*alices[:2], bobs]):
        live = await registry.acquire(DocKey(f"r{n % 2}", "d"))
        await live.join(peer)
    anonymous = Peer(None, max_queue_bytes=1 << 20, send_timeout=1.0)
    await live.join(anonymous)  # no principal (tests): never a match
    registry.feeds.add(Feed(alice, alices[2]))  # her live stream (/ws/_me)
    assert checker.open_users() == {alice, bob}
    assert await checker.recheck() == 0  # nobody is disabled: nothing closes
    await meta.set_user_disabled(alice, True)
    assert await checker.recheck() == 3
    assert [p.close_code for p in alices] == [4401] * 3
    assert {p.close_reason for p in alices} == {"user disabled"}
    assert bobs.close_code is None and anonymous.close_code is None
    assert checker.rounds == 3
    await meta.close()


async def test_the_task_rechecks_every_interval_and_survives_a_failed_round(
    caplog: pytest.LogCaptureFixture,
) -> None:
    meta = open_meta_store("memory://")
    await meta.open()
    alice = await user(meta, "alice")
    registry = RoomRegistry(MemoryStore(), settings())
    peer = peer_of(alice)
    await (await registry.acquire(DocKey("r", "d"))).join(peer)
    real = meta.get_disabled_users
    failures: list[int] = []

    async def flaky(user_ids: object) -> set[str]:
        if not failures:
            failures.append(1)
            raise OSError("database is locked")
        return await real(user_ids)  # type: ignore[arg-type]

    meta.get_disabled_users = flaky  # type: ignore[method-assign]
    checker = DisabledUsers(registry, meta, interval=0.01)
    await meta.set_user_disabled(alice, True)
    with caplog.at_level(logging.ERROR, "collab.sync.disabled"), anyio.fail_after(10):
        checker.start()
        checker.start()  # a second start is a no-op
        await wait_until(lambda: peer.close_code == 4401)
    await checker.stop()
    await checker.stop()  # and so is a second stop
    assert failures and "tried again next round" in caplog.text
    await meta.close()
