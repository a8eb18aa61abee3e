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


async def test_an_invite_grants_only_while_its_creator_is_an_owner(meta: MetaStore) -> None:
    """Issue 8, item 1: demotion or removal voids the creator's invites in the same step, and
    redeeming re-checks the creator's current role (a stale invite grants nothing)."""
    await meta.create_room("r", "R", "a")
    await meta.add_member("r", "b", Role.owner)
    _, by_b = await meta.create_invite("r", Role.owner, "b", ttl=60)
    _, by_a = await meta.create_invite("r", Role.editor, "a", ttl=60)
    change = await meta.update_member("r", "b", None)
    assert change.voided_invites == 1 and change.current is None
    with pytest.raises(NotFound):
        await meta.redeem_invite(by_b, "b")
    assert await meta.get_member("r", "b") is None
    assert (i := await meta.find_invite(by_b)) is not None and i.status(T0) == "voided"
    assert (await meta.redeem_invite(by_a, "c")).role == Role.editor  # a's stays good

    # Demotion voids too; a raise (or the same role) does not.
    await meta.add_member("r", "d", Role.owner)
    _, by_d = await meta.create_invite("r", Role.viewer, "d", ttl=60)
    assert (await meta.update_member("r", "d", Role.owner)).voided_invites == 0
    assert (await meta.update_member("r", "d", Role.editor)).voided_invites == 1
    with pytest.raises(NotFound):
        await meta.redeem_invite(by_d, "e")


async def test_redeem_rechecks_the_creator_even_if_nothing_voided(meta: MetaStore) -> None:
    """A creator whose role dropped without ``update_member`` (an older invite, a row changed
    by hand) still grants nothing; a site admin's invites grant while they are an admin."""
    await meta.create_room("r", "R", "a")
    _, stale = await meta.create_invite("r", Role.owner, "x", ttl=60)  # x is no member
    with pytest.raises(NotFound):
        await meta.redeem_invite(stale, "b")
    assert (await meta.redeem_invite(stale, "b", creator_is_admin=True)).role == Role.owner
    await meta.set_member("r", "v", Role.viewer)
    _, by_viewer = await meta.create_invite("r", Role.viewer, "v", ttl=60)
    with pytest.raises(NotFound):
        await meta.redeem_invite(by_viewer, "c")


async def test_list_revoke_and_statuses(meta: MetaStore, clock: Clock) -> None:
    await meta.create_room("r", "R", "a")
    await meta.create_room("other", "O", "a")
    first, code1 = await meta.create_invite("r", Role.viewer, "a", ttl=60)
    clock.advance(1)
    second, _ = await meta.create_invite("r", Role.editor, "a", ttl=10)
    clock.advance(1)
    third, _ = await meta.create_invite("r", Role.editor, "a", ttl=60)
    await meta.create_invite("other", Role.editor, "a", ttl=60)
    assert [i.id for i in await meta.list_invites("r")] == [first.id, second.id, third.id]
    assert first.created_at == T0 and third.created_at == T0 + 2
    revoked = await meta.close_invite(third.id, "revoked")
    assert (revoked.closed_reason, revoked.closed_at, revoked.status(T0 + 2)) == (
        "revoked",
        T0 + 2,
        "revoked",
    )
    with pytest.raises(NotFound):
        await meta.close_invite(third.id, "revoked")  # no longer pending
    with pytest.raises(NotFound):
        await meta.close_invite("unknown", "revoked")
    await meta.redeem_invite(code1, "u")
    clock.advance(10)
    statuses = {i.id: i.status(clock()) for i in await meta.list_invites("r")}
    assert statuses == {first.id: "used", second.id: "expired", third.id: "revoked"}
    used = await meta.get_invite(first.id)
    assert used is not None and (used.used_by, used.used_at) == ("u", T0 + 2)
    assert await meta.get_invite("unknown") is None and await meta.find_invite("nope") is None


async def test_invitations_by_email(meta: MetaStore, clock: Clock) -> None:
    """Item 12: pending invitations bound to an address, found by it (ASCII case folded),
    redeemed by id; a newer one for the same address and room replaces the older."""
    await meta.create_room("r", "R", "a")
    await meta.create_room("s", "S", "a")
    older, _ = await meta.create_invite("r", Role.viewer, "a", ttl=60, email="Dana@Example.com")
    clock.advance(1)
    newer, _ = await meta.create_invite("r", Role.editor, "a", ttl=60, email="dana@example.com")
    clock.advance(1)
    other, _ = await meta.create_invite("s", Role.viewer, "a", ttl=60, email="dana@example.com")
    await meta.create_invite("s", Role.viewer, "a", ttl=60, email="erin@example.com")
    assert (o := await meta.get_invite(older.id)) is not None and o.status(T0) == "replaced"
    found = await meta.invites_for_email("DANA@example.COM")
    assert [i.id for i in found] == [newer.id, other.id]
    assert found[0].email == "dana@example.com"
    member = await meta.redeem_invite_by_id(newer.id, "dana")
    assert member == Member("r", "dana", Role.editor, T0 + 2)
    with pytest.raises(NotFound):
        await meta.redeem_invite_by_id(newer.id, "dana")
    declined = await meta.close_invite(other.id, "declined")
    assert declined.status(T0) == "declined"
    assert await meta.invites_for_email("dana@example.com") == []
    expiring, _ = await meta.create_invite("r", Role.viewer, "a", ttl=5, email="dana@x.org")
    assert [i.id for i in await meta.invites_for_email("dana@x.org")] == [expiring.id]
    clock.advance(5)
    assert await meta.invites_for_email("dana@x.org") == []
    late, _ = await meta.create_invite("s", Role.viewer, "a", ttl=60, email="dana@example.com")
    await meta.delete_room("s")
    assert await meta.invites_for_email("dana@example.com") == []
    with pytest.raises(NotFound):
        await meta.redeem_invite_by_id(late.id, "dana")
