"""Users: create on first login, refresh the profile, find by verified email, disable."""

from __future__ import annotations

import pytest

from collab.errors import NotFound
from collab.meta import Users
from tests.meta.support import T0, Clock, add_user

pytestmark = pytest.mark.anyio


async def test_upsert_oidc_user_creates_then_updates_the_profile(meta: Users, clock: Clock) -> None:
    user = await meta.upsert_oidc_user(
        "https://idp", "sub-1", name="Ann", email="a@x.org", email_verified=False, picture=None
    )
    assert len(user.id) == 32 and int(user.id, 16) >= 0
    assert (user.issuer, user.subject, user.name) == ("https://idp", "sub-1", "Ann")
    assert user.email == "a@x.org"
    assert not user.email_verified and not user.disabled and user.created_at == T0
    clock.advance(60)
    again = await meta.upsert_oidc_user(
        "https://idp", "sub-1", name="Ann B", email="b@x.org", email_verified=True, picture="p.png"
    )
    assert again.id == user.id and again.created_at == T0
    assert (again.name, again.email, again.email_verified, again.picture) == (
        "Ann B",
        "b@x.org",
        True,
        "p.png",
    )
    assert await meta.get_user(user.id) == again
    other_issuer = await meta.upsert_oidc_user(
        "https://other", "sub-1", name="Ann", email=None, email_verified=False, picture=None
    )
    assert other_issuer.id != user.id
    assert [u.id for u in await meta.list_users()] == [user.id, other_issuer.id]
    assert await meta.get_user("nobody") is None


async def test_find_user_by_verified_email(meta: Users, clock: Clock) -> None:
    first = await meta.upsert_oidc_user(
        "i", "1", name="a", email="Ann@Example.org", email_verified=True, picture=None
    )
    clock.advance(1)
    await meta.upsert_oidc_user(
        "i", "2", name="b", email="ann@example.org", email_verified=True, picture=None
    )
    await meta.upsert_oidc_user(
        "i", "3", name="c", email="bob@example.org", email_verified=False, picture=None
    )
    found = await meta.find_user_by_verified_email("ANN@example.ORG")
    assert found is not None and found.id == first.id, "case-insensitive; the oldest wins"
    assert await meta.find_user_by_verified_email("bob@example.org") is None, "unverified"
    assert await meta.find_user_by_verified_email("nobody@example.org") is None


async def test_set_user_disabled(meta: Users) -> None:
    user_id = await add_user(meta)
    await meta.set_user_disabled(user_id, True)
    assert (u := await meta.get_user(user_id)) is not None and u.disabled
    await meta.set_user_disabled(user_id, False)
    assert (u := await meta.get_user(user_id)) is not None and not u.disabled
    with pytest.raises(NotFound):
        await meta.set_user_disabled("nobody", True)


async def test_get_disabled_users(meta: Users) -> None:
    """Batched (``collab.sync.disabled`` asks about every user behind a node's open sockets):
    more ids than one query's batch, unknown ones left out."""
    ann, bob = await add_user(meta, "ann"), await add_user(meta, "bob")
    many = [ann, bob, *(f"nobody-{n}" for n in range(600))]
    assert await meta.get_disabled_users(many) == set()
    await meta.set_user_disabled(bob, True)
    assert await meta.get_disabled_users(many) == {bob}
    assert await meta.get_disabled_users([]) == set()
