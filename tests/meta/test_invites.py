"""Invites: a role granted once until it expires, never lowering one; one concurrent redeem wins."""

from __future__ import annotations

import anyio
import pytest

from collab.errors import NotFound
from collab.meta import Member, MetaStore, Role
from tests.meta.support import T0, Clock

pytestmark = pytest.mark.anyio


async def test_invite_grants_a_role_once(meta: MetaStore, clock: Clock) -> None:
    await meta.create_room("r", "R", "u1")
    invite, secret = await meta.create_invite("r", Role.editor, "u1", ttl=60)
    assert len(invite.id) == 32 and invite.id != secret and invite.used_by is None
    assert (invite.room_id, invite.role, invite.created_by, invite.expires_at) == (
        "r",
        Role.editor,
        "u1",
        T0 + 60,
    )
    member = await meta.redeem_invite(secret, "u2")
    assert member == Member("r", "u2", Role.editor, T0)
    assert await meta.get_member("r", "u2") == member
    with pytest.raises(NotFound):
        await meta.redeem_invite(secret, "u3")
    with pytest.raises(NotFound):
        await meta.redeem_invite("unknown", "u3")
    with pytest.raises(NotFound):
        await meta.create_invite("nope", Role.viewer, "u1", ttl=60)


async def test_expired_invite_is_refused(meta: MetaStore, clock: Clock) -> None:
    await meta.create_room("r", "R", "u1")
    _, secret = await meta.create_invite("r", Role.viewer, "u1", ttl=60)
    clock.advance(60)
    with pytest.raises(NotFound):
        await meta.redeem_invite(secret, "u2")
    assert await meta.get_member("r", "u2") is None


async def test_redeeming_never_lowers_a_role(meta: MetaStore, clock: Clock) -> None:
    await meta.create_room("r", "R", "u1")
    await meta.set_member("r", "u2", Role.commenter)
    _, viewer_invite = await meta.create_invite("r", Role.viewer, "u1", ttl=60)
    _, editor_invite = await meta.create_invite("r", Role.editor, "u1", ttl=60)
    clock.advance(1)
    assert await meta.redeem_invite(viewer_invite, "u1") == Member("r", "u1", Role.owner, T0)
    with pytest.raises(NotFound):
        await meta.redeem_invite(viewer_invite, "u3")  # consumed all the same
    raised = await meta.redeem_invite(editor_invite, "u2")
    assert raised == Member("r", "u2", Role.editor, T0), "raised, added_at kept"


async def test_concurrent_redeems_exactly_one_wins(meta: MetaStore) -> None:
    await meta.create_room("r", "R", "u0")
    _, secret = await meta.create_invite("r", Role.editor, "u0", ttl=60)
    winners: list[Member] = []
    refused: list[str] = []

    async def redeem(user_id: str) -> None:
        try:
            winners.append(await meta.redeem_invite(secret, user_id))
        except NotFound:
            refused.append(user_id)

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            for i in range(10):
                tg.start_soon(redeem, f"u{i + 1}")
    assert len(winners) == 1 and len(refused) == 9
    assert {m.user_id for m in await meta.list_members("r")} == {"u0", winners[0].user_id}
