"""Bots made through the API, and incoming webhooks: the contract every store keeps."""

from __future__ import annotations

import pytest

from collab.errors import Conflict
from collab.meta import BotRecord, MetaStore
from tests.meta.support import T0, Clock

pytestmark = pytest.mark.anyio


async def test_bots_belong_to_the_room_that_made_them(meta: MetaStore) -> None:
    first = BotRecord("b1", "r", "rollbot", "owner", T0)
    await meta.add_bot(first)
    await meta.add_bot(BotRecord("b2", "r", "other", "owner", T0 + 1))
    await meta.add_bot(BotRecord("b3", "elsewhere", "x", "owner", T0))
    with pytest.raises(Conflict):
        await meta.add_bot(BotRecord("b1", "elsewhere", "again", "owner", T0))
    assert await meta.get_bot("r", "b1") == first
    assert await meta.get_bot("elsewhere", "b1") is None
    assert [b.user_id for b in await meta.list_bots("r")] == ["b1", "b2"]
    await meta.remove_bot("elsewhere", "b1")  # not that room's: nothing happens
    assert await meta.get_bot("r", "b1") == first
    await meta.remove_bot("r", "b1")
    await meta.remove_bot("r", "b1")
    assert [b.user_id for b in await meta.list_bots("r")] == ["b2"]


async def test_incoming_hooks_tell_a_wrong_secret_from_a_revoked_hook(
    meta: MetaStore, clock: Clock
) -> None:
    hook, secret = await meta.create_incoming_hook("r", "bot", "CI", "owner")
    assert len(secret) >= 40 and secret not in repr(hook)
    assert (hook.room_id, hook.bot_id, hook.name, hook.created_at) == ("r", "bot", "CI", T0)
    clock.advance(5)
    found = await meta.find_incoming_hook(hook.id, secret)
    assert found is not None and found[1] and found[0].last_used_at == T0 + 5
    wrong = await meta.find_incoming_hook(hook.id, secret + "x")
    assert wrong is not None and not wrong[1]
    assert await meta.find_incoming_hook("nope", secret) is None
    other, _ = await meta.create_incoming_hook("elsewhere", "bot2", "x", "owner")
    assert [h.id for h in await meta.list_incoming_hooks("r")] == [hook.id]
    assert await meta.revoke_incoming_hook("elsewhere", hook.id) is None
    clock.advance(5)
    revoked = await meta.revoke_incoming_hook("r", hook.id)
    assert revoked is not None and revoked.revoked_at == T0 + 10
    again = await meta.revoke_incoming_hook("r", hook.id)
    assert again is not None and again.revoked_at == T0 + 10
    assert await meta.find_incoming_hook(hook.id, secret) is None
    listed = await meta.list_incoming_hooks("r")
    assert [(h.id, h.revoked) for h in listed] == [(hook.id, True)]
    assert (await meta.find_incoming_hook(other.id, "x")) is not None
