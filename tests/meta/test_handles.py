"""Handles: given once at creation (preferred username, email, name, ``user``), unique whatever
their case, numbered on a clash, never reserved, changed only by ``set_handle``; and the
per-user ``private_read_markers`` setting. Every store."""

from __future__ import annotations

import anyio
import pytest

from collab.errors import Conflict, NotFound
from collab.meta import Users
from collab.meta.handles import (
    BadHandle,
    handle_base,
    handle_candidates,
    is_valid_handle,
    normalize_handle,
    parse_handle,
)
from tests.meta.support import add_user

pytestmark = pytest.mark.anyio


async def _new(
    meta: Users,
    subject: str,
    preferred: str | None = None,
    *,
    name: str = "",
    email: str | None = None,
) -> str:
    user = await meta.upsert_oidc_user(
        "https://idp",
        subject,
        name=name,
        email=email,
        email_verified=False,
        picture=None,
        preferred_handle=preferred,
    )
    return user.handle


def test_normalize_and_parse() -> None:
    assert normalize_handle("Ann Lee") == "ann-lee"
    assert normalize_handle("  Jöhn  O'Brien!! ") == "john-o-brien"
    assert normalize_handle("..__--x") == "x"
    assert normalize_handle("a.-_b") == "a.b"  # a run of separators keeps its first
    assert normalize_handle("李小龙") == "" and normalize_handle(None) == ""
    assert normalize_handle("x" * 40) == "x" * 32
    assert handle_base(None, "李", "Bob Smith") == "bob-smith"
    assert handle_base("", None, "") == "user"
    assert parse_handle(" Ann.Lee ") == "ann.lee"
    for bad in ("", "-ann", ".a", "a b", "a@b", "x" * 33, "ànn", "\u212a"):
        with pytest.raises(BadHandle):
            parse_handle(bad)
    for reserved in ("room", "Here", "CHANNEL", "everyone"):
        with pytest.raises(BadHandle, match="reserved"):
            parse_handle(reserved)
    assert is_valid_handle("9lives") and not is_valid_handle("Ann")
    firsts = [c for c, _ in zip(handle_candidates("room"), range(3), strict=False)]
    assert firsts == ["room-2", "room-3", "room-4"], "a reserved base is never given itself"
    long = [c for c, _ in zip(handle_candidates("y" * 32), range(2), strict=False)]
    assert long == ["y" * 32, "y" * 30 + "-2"]
    crowded = [c for c, _ in zip(handle_candidates("z"), range(1002), strict=False)]
    assert crowded[-1].startswith("z-") and len(crowded[-1]) == 10  # random after 1000 tries
    assert all(is_valid_handle(c) for c in crowded)


async def test_a_new_user_gets_a_unique_handle(meta: Users) -> None:
    assert await _new(meta, "1", "Ann") == "ann"
    assert await _new(meta, "2", "ANN") == "ann-2", "unique whatever the case"
    assert await _new(meta, "3", "ann") == "ann-3"
    assert await _new(meta, "4", None, email="Bob.Smith@x.org", name="B") == "bob.smith"
    assert await _new(meta, "5", "!!", name="Carol Ng") == "carol-ng"
    assert await _new(meta, "6", None, name="李") == "user"
    assert await _new(meta, "7", None) == "user-2"
    assert await _new(meta, "8", "everyone") == "everyone-2", "reserved: never given"
    # A later login changes the profile, never the handle.
    again = await meta.upsert_oidc_user(
        "https://idp",
        "1",
        name="Someone else",
        email=None,
        email_verified=False,
        picture=None,
        preferred_handle="zed",
    )
    assert again.handle == "ann"
    assert (u := await meta.get_user(again.id)) is not None and u.handle == "ann"


async def test_concurrent_creations_never_share_a_handle(meta: Users) -> None:
    handles: list[str] = []

    async def create(i: int) -> None:
        handles.append(await _new(meta, f"s{i}", "same"))

    async with anyio.create_task_group() as tg:
        for i in range(20):
            tg.start_soon(create, i)
    assert sorted(handles) == sorted(["same", *(f"same-{n}" for n in range(2, 21))])


async def test_lookup_by_handle_is_case_insensitive(meta: Users) -> None:
    ann = await add_user(meta, "ann")
    bob = await add_user(meta, "bob")
    found = await meta.get_user_by_handle("ANN")
    assert found is not None and found.id == ann
    assert await meta.get_user_by_handle("nobody") is None
    assert await meta.get_user_by_handle("not a handle") is None
    assert await meta.get_user_by_handle("") is None
    await add_user(meta, "k")
    assert await meta.get_user_by_handle("\u212a") is None, "ASCII case folding only"
    batch = await meta.get_users_by_handles(["Ann", "bob", "BOB", "ghost", "", "x y", "\u212a"])
    assert {h: u.id for h, u in batch.items()} == {"ann": ann, "bob": bob}
    many = await meta.get_users_by_handles([f"u{i}" for i in range(1200)] + ["ann"])
    assert list(many) == ["ann"], "batches past the query's bound"
    assert await meta.get_users_by_handles([]) == {}


async def test_set_handle(meta: Users) -> None:
    ann = await add_user(meta, "ann")
    bob = await add_user(meta, "bob")
    changed = await meta.set_handle(ann, "Annie")
    assert changed.handle == "annie" and changed.id == ann
    assert (await meta.set_handle(ann, "annie")).handle == "annie", "one's own: no conflict"
    with pytest.raises(Conflict):
        await meta.set_handle(bob, "ANNIE")
    with pytest.raises(BadHandle):
        await meta.set_handle(bob, "here")
    with pytest.raises(BadHandle):
        await meta.set_handle(bob, "-x")
    with pytest.raises(NotFound):
        await meta.set_handle("nobody", "free")
    assert await meta.get_user_by_handle("ann") is None, "the old handle is free again"
    assert (await meta.set_handle(bob, "ann")).handle == "ann"


async def test_private_read_markers(meta: Users) -> None:
    ann = await add_user(meta, "ann")
    bob = await add_user(meta, "bob")
    assert (u := await meta.get_user(ann)) is not None and not u.private_read_markers
    assert await meta.get_private_read_markers([ann, bob, "nobody"]) == set()
    await meta.set_private_read_markers(ann, True)
    assert (u := await meta.get_user(ann)) is not None and u.private_read_markers
    assert await meta.get_private_read_markers([ann, bob, "nobody"]) == {ann}
    await meta.set_private_read_markers(ann, False)
    assert await meta.get_private_read_markers([ann]) == set()
    with pytest.raises(NotFound):
        await meta.set_private_read_markers("nobody", True)


async def test_assign_missing_handles_is_a_no_op_when_every_user_has_one(meta: Users) -> None:
    await add_user(meta, "ann")
    assert await meta.assign_missing_handles() == 0
