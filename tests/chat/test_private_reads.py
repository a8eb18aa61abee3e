"""Private read markers (``PATCH /me {"private_read_markers": true}``) against a chat doc that
is being loaded when the user switches: found in review."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

import pytest

from collab.chat import chat_key
from collab.chat.schema import read_users
from collab.meta import NewMessage, Role
from collab.services import Services

pytestmark = pytest.mark.anyio

ROOM = "r"


async def test_switching_private_while_the_chat_doc_loads_hides_the_marker(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The load reads who is private, then shows the others' markers in the doc; the switch
    (``show_read_markers``) only looked at loaded docs, so a doc whose load read the setting
    just before the switch showed the now private marker in its ``reads`` ("seen by") for as
    long as it stayed loaded. The switch must reach a doc being loaded too."""
    meta = services.meta
    alice, bob = [
        (
            await meta.upsert_oidc_user(
                n, n, name=n, email=None, email_verified=False, picture=None
            )
        ).id
        for n in ("alice", "bob")
    ]
    await meta.create_room(ROOM, ROOM, alice)
    await meta.add_member(ROOM, bob, Role.editor)
    await meta.post_message(NewMessage(ROOM, "m1", alice, "Alice", None, "c1", "hi", 1.0))
    assert await meta.set_read_markers(ROOM, {bob: 1}) == {bob: 1}
    real = meta.get_private_read_markers
    read, go = asyncio.Event(), asyncio.Event()

    async def then_wait(user_ids: Iterable[str]) -> set[str]:
        found = await real(user_ids)
        if not read.is_set():  # the load's read: it finds bob public
            read.set()
            await go.wait()
        return found

    monkeypatch.setattr(meta, "get_private_read_markers", then_wait)
    loading = asyncio.create_task(services.registry.acquire(chat_key(ROOM)))
    await read.wait()
    await meta.set_private_read_markers(bob, True)  # PATCH /me, then:
    switching = asyncio.create_task(services.chat.show_read_markers(bob, public=False))
    await asyncio.sleep(0.05)
    go.set()
    live = await loading
    await switching
    try:
        assert bob not in read_users(live.doc)
    finally:
        services.registry.release(live)
