"""A doc or a room deleted and made again under the same name while its deletion reaches the
index: the new one's text is found without a further commit or post, on every index.

The API deletes from the store (or the tables) first and drops from the index after; a doc
re-created and committed in between, or a room re-created and posted to in between, is the
new one, and the drop must not take it (``Search.drop_doc``, ``Search.drop_room``)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from pycrdt import Doc, Text

from collab.meta import NewMessage
from collab.meta.memory import MemoryMetaStore
from collab.names import DocKey
from collab.search import Scope, Search, parse_query, rebuild
from collab.search.index import SearchIndex
from collab.search.postgres import PostgresIndex
from collab.store.memory import MemoryStore
from collab.wire import Limits
from tests.search.backends import KINDS, new_index
from tests.support.waiting import wait_until

pytestmark = pytest.mark.anyio

NOTES = DocKey("a", "notes")


@pytest.fixture(params=KINDS)
async def index(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SearchIndex]:
    found = new_index(request, tmp_path)
    yield found


@pytest.fixture
async def search(index: SearchIndex) -> AsyncIterator[Search]:
    meta = MemoryMetaStore()
    await meta.create_room("a", "a", "u1")
    found = Search(index, meta, MemoryStore(), Limits(), delay=0.0)
    await found.open()
    if found.rebuilding is not None:
        await found.rebuilding
    if isinstance(index, PostgresIndex):  # one database for every test: start from nothing
        await index.clear()
    yield found
    await found.close()


async def find(search: Search, q: str) -> list[str]:
    page = await search.index.search(parse_query(q), [Scope("a")])
    return sorted(h.key for h in page.hits)


async def write_text(store: Any, key: DocKey, text: str) -> None:
    doc: Doc[Any] = Doc()
    doc["t"] = Text(text)
    await store.append(key, [doc.get_update()])


async def post(search: Search, cid: str, text: str) -> None:
    """A post as ChatService makes it: the row, then the index's live feed."""
    new = NewMessage("a", f"a-{cid}", "u1", "U", None, cid, text, time.time())
    rows = (await search.meta.post_message(new))[0]
    await search.indexer.messages_written("a", [rows])


@pytest.mark.parametrize("indexed_first", [False, True])
async def test_a_doc_made_again_before_its_drop_is_found(
    search: Search, indexed_first: bool
) -> None:
    """DELETE of a doc: the store forgets it, a client makes it again and commits (its
    re-index queued, or already written), then the drop reaches the index."""
    store = search.store
    await write_text(store, NOTES, "the old doc's words")
    await search.indexer.reindex_doc(NOTES)
    await search.indexer.flush()
    await store.delete_doc(NOTES)  # DELETE .../docs/notes, before its drop_doc
    await write_text(store, NOTES, "reborn words")
    search.indexer.doc_stored(NOTES)  # the new doc's commit
    if indexed_first:
        await search.indexer.reindex_doc(NOTES)
        await search.indexer.flush()
        assert await find(search, "reborn") == ["notes"]
    await search.drop_doc(NOTES)
    with anyio.fail_after(10):
        await wait_until(lambda: find(search, "reborn"), timeout=5, what="the new doc's text")
    assert await find(search, "old doc") == []


async def test_a_room_made_again_before_its_drop_keeps_its_messages(search: Search) -> None:
    """DELETE of a room: its rows go, the id is taken again and posted to (a message, a doc
    commit), then the drop reaches the index. The old room's text stays gone, the new room's
    is found, and a rebuild does not need --fresh to find it either."""
    meta, store = search.meta, search.store
    await post(search, "1", "the old room's secret")
    await write_text(store, NOTES, "the old doc secret")
    await search.indexer.reindex_doc(NOTES)
    await search.indexer.flush()
    await meta.delete_room("a")  # DELETE /rooms/a: the tables, then the docs ...
    await store.delete_doc(NOTES)
    await meta.create_room("a", "a", "u2")  # ... meanwhile the id is taken again
    await post(search, "2", "a new secret")
    await write_text(store, NOTES, "a new doc secret")
    search.indexer.doc_stored(NOTES)
    await search.drop_room("a")  # ... and the drop reaches the index

    async def found_new() -> bool:
        return await find(search, "secret") == ["a-2", "notes"]

    with anyio.fail_after(10):
        await wait_until(found_new, timeout=5, what="the new room's text")
    assert await find(search, "old") == []
    await rebuild(search.indexer, meta, store)
    assert await find(search, "secret") == ["a-2", "notes"]
    deleted = await meta.delete_message("a", "a-2", time.time())  # and later changes count
    await search.indexer.messages_written("a", [deleted])
    await search.indexer.flush()
    assert await find(search, "secret") == ["notes"]


async def test_a_rebuild_finds_what_a_drop_took_from_the_room_made_again(search: Search) -> None:
    """The drop took the new room's messages and its refill never ran (the server ended
    between them, or an index dropped by an older server): a rebuild finds them again, with
    no ``reindex --fresh``, and still none of the old room's."""
    await post(search, "1", "the old room's secret")
    await search.meta.delete_room("a")
    await search.meta.create_room("a", "a", "u2")
    await post(search, "2", "a new secret")
    await search.indexer.drop_room("a")  # the drop alone
    assert await find(search, "secret") == []
    await rebuild(search.indexer, search.meta, search.store)
    assert await find(search, "secret") == ["a-2"]
