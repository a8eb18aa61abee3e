"""The mention inbox as ``collab.chat.service`` feeds it, at edges found in review: a mention
its user read before the entry was made, and the counts the live feed sends."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest

from collab.chat import Actor
from collab.meta import Message, Role, Unread, User
from collab.services import Services
from collab.sync.feeds import Feed

pytestmark = pytest.mark.anyio

ROOM = "r"


async def user(services: Services, handle: str) -> User:
    return await services.meta.upsert_oidc_user(
        "iss",
        handle,
        name=handle.title(),
        email=None,
        email_verified=False,
        picture=None,
        preferred_handle=handle,
    )


def actor(found: User, role: Role) -> Actor:
    return Actor(found.id, found.name, found.handle, role)


class Held:
    """A row observer (the search index) that holds the first write until let go, as its
    backpressure may."""

    def __init__(self) -> None:
        self.reached = asyncio.Event()
        self.go = asyncio.Event()

    async def messages_written(self, room_id: str, messages: Sequence[Message]) -> None:
        self.reached.set()
        await self.go.wait()


async def test_a_mention_read_before_its_entry_was_made_is_read(services: Services) -> None:
    """The post is in the doc (sent to readers) before its inbox entries are made: a client
    that shows it and marks it read at once moves the marker first. The entry made after must
    be read (the marker reaches its seq), not an unread mention the user already read (before:
    unread, so ``mentions`` stayed 1 with ``unread`` 0 until marked by hand)."""
    alice, bob = await user(services, "alice"), await user(services, "bob")
    await services.meta.create_room(ROOM, ROOM, alice.id)
    await services.meta.add_member(ROOM, bob.id, Role.editor)
    held = Held()
    services.chat.row_observer = held
    posting = asyncio.create_task(
        services.chat.post(ROOM, actor(alice, Role.owner), "@bob look", "c1")
    )
    await held.reached.wait()
    seq = await services.meta.last_seq(ROOM)
    assert await services.chat.mark_read(ROOM, actor(bob, Role.editor), seq) == seq
    held.go.set()
    message, created = await posting
    assert created and message.mentions == (bob.id,)
    assert (await services.meta.unread_counts(bob.id, [ROOM]))[ROOM] == Unread(0, 0)
    assert [(e.message_id, e.read) for e, _ in await services.meta.list_inbox(bob.id)] == [
        (message.id, True)
    ]


class Peerless:
    """What a ``Feed`` keeps of its socket's peer here: nothing is sent."""


async def test_the_live_feed_is_told_once_the_entries_are_made(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A post signals the room's streams (``/ws/_me``) when its row is durable, but its inbox
    entries are made after that: a stream that read its counts in between showed the new
    message without its mention, and nothing told it again (``mentions`` stayed 0 on the
    sidebar until some other change). The entries' write must signal the room too."""
    alice, bob = await user(services, "alice"), await user(services, "bob")
    await services.meta.create_room(ROOM, ROOM, alice.id)
    await services.meta.add_member(ROOM, bob.id, Role.editor)
    hub = services.registry.feeds
    feed = Feed(bob.id, Peerless())  # type: ignore[arg-type]
    assert hub.add(feed)
    hub.watch(feed, {ROOM})
    real = services.meta.add_inbox_entries

    async def after_the_stream_looked(*args: Any, **kwargs: Any) -> list[str]:
        assert ROOM in feed.dirty  # the post's signal
        feed.dirty.clear()  # the stream's task read the counts (no entry yet)
        return await real(*args, **kwargs)

    monkeypatch.setattr(services.meta, "add_inbox_entries", after_the_stream_looked)
    await services.chat.post(ROOM, actor(alice, Role.owner), "@bob look", "c1")
    assert ROOM in feed.dirty  # told again: its next read counts the mention
    assert (await services.meta.unread_counts(bob.id, [ROOM]))[ROOM] == Unread(1, 1)
    feed.dirty.clear()
    await services.chat.post(ROOM, actor(alice, Role.owner), "@bob look", "c1")  # a retry
    assert ROOM not in feed.dirty  # nothing new: nobody is told
