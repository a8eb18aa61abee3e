"""The caps the policy enforces (docs per room, rooms per user), raised with their Quota."""

from __future__ import annotations

import pytest

from collab.auth.policy import check_doc_quota, may_create_doc, room_role
from collab.auth.principal import Principal
from collab.errors import LimitReached, Quota
from collab.meta.memory import MemoryMetaStore
from collab.names import DocKey
from collab.settings import Settings
from collab.store.memory import MemoryStore

pytestmark = pytest.mark.anyio


async def test_may_create_doc_counts_stored_docs() -> None:
    store, meta = MemoryStore(), MemoryMetaStore()
    settings = Settings(max_docs_per_room=2)
    new = DocKey("r", "new")
    assert await may_create_doc(store, meta, settings, new)
    await store.append(DocKey("r", "a"), [b"x"])
    await store.append(DocKey("other", "a"), [b"x"])
    assert await may_create_doc(store, meta, settings, new)
    await store.append(DocKey("r", "b"), [b"x"])
    assert not await may_create_doc(store, meta, settings, new)
    assert await may_create_doc(store, meta, settings, DocKey("other", "new"))
    await store.delete_doc(DocKey("r", "a"))
    assert await may_create_doc(store, meta, settings, new)


async def test_may_create_doc_counts_described_docs() -> None:
    """A doc with metadata only counts as the API counts it, and may itself be created."""
    store, meta = MemoryStore(), MemoryMetaStore()
    settings = Settings(max_docs_per_room=2)
    await store.append(DocKey("r", "a"), [b"x"])
    await meta.put_doc_meta("r", "a", title="A", kind=None, by="u")  # stored and described
    await meta.put_doc_meta("r", "b", title="B", kind=None, by="u")
    assert not await may_create_doc(store, meta, settings, DocKey("r", "new"))
    assert await may_create_doc(store, meta, settings, DocKey("r", "b"))


async def test_doc_quota_refusal_carries_its_quota() -> None:
    store, meta = MemoryStore(), MemoryMetaStore()
    settings = Settings(max_docs_per_room=1)
    await check_doc_quota(store, meta, settings, DocKey("r", "new"))
    await store.append(DocKey("r", "a"), [b"x"])
    with pytest.raises(LimitReached) as refused:
        await check_doc_quota(store, meta, settings, DocKey("r", "new"))
    assert refused.value.quota is Quota.docs_per_room
    assert refused.value.close_code == 4403
    assert refused.value.reason == "document limit of this room reached"


async def test_room_creation_on_join_stops_at_the_per_user_cap() -> None:
    meta = MemoryMetaStore()
    await meta.open()
    user = await meta.upsert_oidc_user(
        "test", "u", name="u", email=None, email_verified=False, picture=None
    )
    principal = Principal(user_id=user.id, name="u", via="api_token")
    settings = Settings(max_rooms_per_user=1)
    await room_role(meta, settings, principal, "first", create=True)
    with pytest.raises(LimitReached) as refused:
        await room_role(meta, settings, principal, "second", create=True)
    assert refused.value.quota is Quota.rooms_per_user
    assert refused.value.reason == "room limit reached"
    await meta.close()
