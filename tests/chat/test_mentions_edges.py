"""Mentions resolved against a real store (``collab.chat.mentions.mentioned_users``), at the
edges of the "trailing punctuation is tried both ways" rule found in review."""

from __future__ import annotations

import pytest

from collab.chat.mentions import mentioned_users
from collab.errors import Conflict
from collab.meta import Role
from collab.meta.handles import BadHandle, parse_handle
from collab.services import Services

pytestmark = pytest.mark.anyio

ROOM = "r"


async def members(services: Services, *handles: str) -> list[str]:
    ids = []
    for handle in handles:
        user = await services.meta.upsert_oidc_user(
            "iss",
            handle,
            name=handle,
            email=None,
            email_verified=False,
            picture=None,
            preferred_handle=handle,
        )
        ids.append(user.id)
    await services.meta.create_room(ROOM, ROOM, ids[0])
    for user_id in ids[1:]:
        await services.meta.add_member(ROOM, user_id, Role.editor)
    return ids


async def test_room_at_the_end_of_a_sentence_names_every_member(services: Services) -> None:
    """``@room.`` is ``@room`` followed by a full stop, as ``@ann.`` is ann (docs/chat.md):
    before, the token ``room.`` was looked up as a handle, found nobody (``room`` is nobody's),
    and the message notified no one."""
    alice, bob, carol = await members(services, "alice", "bob", "carol")
    for text in ("standup now @room.", "@Room- anyone?", "ping @room_"):
        assert await mentioned_users(services.meta, ROOM, alice, text) == (bob, carol), text


@pytest.mark.parametrize("handle", ["room.", "here.", "Everyone-", "channel_", "here.-_"])
def test_a_reserved_word_with_trailing_punctuation_is_reserved(handle: str) -> None:
    """Such a handle would be named by ``@here.`` (``here`` tried second): a user taking it
    was notified of what names nobody, or took ``@room.`` from the whole room."""
    with pytest.raises(BadHandle, match="reserved"):
        parse_handle(handle)


async def test_nobody_takes_a_reserved_word_with_trailing_punctuation(
    services: Services,
) -> None:
    alice, bob = await members(services, "alice", "bob")
    with pytest.raises((BadHandle, Conflict)):
        await services.meta.set_handle(bob, "here.")
    assert await mentioned_users(services.meta, ROOM, alice, "anyone @here.") == ()
    assert parse_handle("rooms.") == "rooms." and parse_handle("here.2") == "here.2"
