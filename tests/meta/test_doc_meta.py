"""Document metadata: a title that changes, a kind set once, gone with its doc and room."""

from __future__ import annotations

import functools

import pytest

from collab.errors import Conflict, LimitReached, Quota
from collab.meta import MetaStore
from tests.meta.support import T0, Clock, all_at_once

pytestmark = pytest.mark.anyio


async def test_created_then_renamed_kind_kept(meta: MetaStore, clock: Clock) -> None:
    assert await meta.get_doc_meta("r", "notes") is None
    created, new = await meta.put_doc_meta("r", "notes", title="Notes", kind="rich", by="u1")
    assert new and (created.title, created.kind, created.created_by) == ("Notes", "rich", "u1")
    assert created.created_at == created.updated_at == T0
    clock.advance(5)
    renamed, new = await meta.put_doc_meta("r", "notes", title="Minutes", kind=None, by="u2")
    assert not new
    assert (renamed.title, renamed.kind, renamed.created_by) == ("Minutes", "rich", "u1")
    assert (renamed.updated_by, renamed.updated_at, renamed.created_at) == ("u2", T0 + 5, T0)
    same, _ = await meta.put_doc_meta("r", "notes", title=None, kind="rich", by="u2")
    assert same.title == "Minutes"  # the same kind again is no change
    with pytest.raises(Conflict):
        await meta.put_doc_meta("r", "notes", title="x", kind="text", by="u2")
    assert await meta.get_doc_meta("r", "notes") == same


async def test_defaults_listing_and_deletion(meta: MetaStore) -> None:
    plain, _ = await meta.put_doc_meta("r", "b", title=None, kind=None, by="u")
    assert (plain.title, plain.kind) == ("b", "text")
    await meta.put_doc_meta("r", "a", title="A", kind="rich", by="u")
    await meta.put_doc_meta("other", "a", title="elsewhere", kind=None, by="u")
    assert [m.name for m in await meta.list_doc_meta("r")] == ["a", "b"]
    await meta.delete_doc_meta("r", "a")
    await meta.delete_doc_meta("r", "a")  # idempotent
    assert [m.name for m in await meta.list_doc_meta("r")] == ["b"]
    assert (await meta.get_doc_meta("other", "a")) is not None


async def test_deleting_the_room_deletes_its_doc_metadata(meta: MetaStore) -> None:
    await meta.create_room("r", "R", "owner")
    await meta.put_doc_meta("r", "a", title="A", kind=None, by="owner")
    await meta.delete_room("r")
    assert await meta.list_doc_meta("r") == []


async def test_new_docs_past_max_docs_are_refused_in_their_own_step(meta: MetaStore) -> None:
    """Counted in the insert's step, with the stored names the caller gives: of 12 new docs
    described at once for a cap of 3 with one doc stored, 2 are written. A stored doc, or one
    described already, is no new doc: it is described or renamed at the cap."""
    await meta.put_doc_meta("other", "x", title=None, kind=None, by="u1")  # another room's
    calls = [
        functools.partial(
            meta.put_doc_meta,
            "r",
            f"d{i}",
            title=None,
            kind=None,
            by="u1",
            max_docs=3,
            stored={"s1"},
        )
        for i in range(12)
    ]
    assert sorted(await all_at_once(calls)) == ["LimitReached"] * 10 + ["ok"] * 2
    described = [m.name for m in await meta.list_doc_meta("r")]
    assert len(described) == 2
    with pytest.raises(LimitReached) as refused:
        await meta.put_doc_meta(
            "r", "new", title=None, kind=None, by="u1", max_docs=3, stored={"s1"}
        )
    assert refused.value.quota == Quota.docs_per_room
    for name in ("s1", described[0]):
        await meta.put_doc_meta("r", name, title="T", kind=None, by="u1", max_docs=3, stored={"s1"})
    assert len(await meta.list_doc_meta("r")) == 3
