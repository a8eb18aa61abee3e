"""The live feed (chat rows, doc commits, deletions) and the rebuild, in-process over the
memory twins: what reaches the index, in which state, and what a race cannot bring back."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pycrdt import Doc, Text

from collab.meta import Message, MetaStore, NewMessage
from collab.meta.memory import MemoryMetaStore
from collab.names import DocKey
from collab.search import Indexer, Scope, Search, parse_query, rebuild
from collab.search.index import SearchIndex
from collab.search.memory import MemoryIndex
from collab.store.base import StoredDoc
from collab.store.memory import MemoryStore
from collab.wire import Limits
from tests.support.waiting import wait_until
from tests.support.ybytes import id_parent_item, root_item, s, update

pytestmark = pytest.mark.anyio

NOTES = DocKey("r", "notes")


class GatedStore(MemoryStore):
    """A memory store whose reads (loads, and the rows after a seq) read, then wait for
    ``gate`` before answering: a read in flight, holding what the doc was when it was read.
    ``reads`` lists them: ("load", rows) or ("after", rows)."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.gate.set()
        self.loading = asyncio.Event()
        self.reads: list[tuple[str, int]] = []

    async def load(self, key: DocKey) -> StoredDoc:
        return await self._read("load", await super().load(key))

    async def updates_after(self, key: DocKey, seq: int) -> StoredDoc:
        return await self._read("after", await super().updates_after(key, seq))

    async def _read(self, kind: str, found: StoredDoc) -> StoredDoc:
        self.reads.append((kind, len(found.updates)))
        self.loading.set()
        await self.gate.wait()
        return found


@pytest.fixture
async def store() -> GatedStore:
    return GatedStore()


@pytest.fixture
async def indexer(store: GatedStore) -> AsyncIterator[Indexer]:
    found = Indexer(MemoryIndex(), store, Limits(), delay=0.0)
    found.start()
    yield found
    await found.close()


async def find(index: SearchIndex, q: str, room: str = "r") -> list[str]:
    return [h.key for h in (await index.search(parse_query(q), [Scope(room)])).hits]


def message(
    text: str, *, id: str = "m1", edited: float | None = None, deleted: bool = False
) -> Message:
    return Message(
        "r", 1, id, "u1", "U", None, "c1", text, 100.0, edited_at=edited, deleted=deleted
    )


async def write_text(store: MemoryStore, key: DocKey, text: str) -> None:
    doc: Doc[Any] = Doc()
    doc["t"] = Text(text)
    await store.append(key, [doc.get_update()])


async def test_chat_rows_in_any_order_end_in_their_newest_state(indexer: Indexer) -> None:
    await indexer.messages_written("r", [message("first draft")])
    await indexer.messages_written("r", [message("deleted", edited=300.0, deleted=True)])
    await indexer.messages_written("r", [message("second draft", edited=200.0)])  # late
    await indexer.flush()
    assert await find(indexer.index, "draft") == [] and await find(indexer.index, "dele") == []
    await indexer.messages_written("r", [message("hello world", id="m2")])
    await indexer.flush()
    assert await find(indexer.index, "world") == ["m2"]


async def test_a_doc_is_reindexed_after_its_commits(indexer: Indexer, store: GatedStore) -> None:
    await write_text(store, NOTES, "离线消息推送 first")
    indexer.doc_stored(NOTES)
    indexer.doc_stored(DocKey("r", "chat"))  # the chat doc is indexed from its rows instead
    await wait_until(lambda: find(indexer.index, "first"), what="the doc's first text")
    store.gate.clear()
    store.loading.clear()
    await write_text(store, NOTES, " second")
    indexer.doc_stored(NOTES)
    await store.loading.wait()  # read: a commit now asks for one more run
    await write_text(store, NOTES, " third")
    indexer.doc_stored(NOTES)
    store.gate.set()
    await wait_until(lambda: find(indexer.index, "third"), what="the run after the read")
    assert await find(indexer.index, "消息推送") == ["notes"]
    await wait_until(lambda: indexer.pending_docs() == 0, what="no run left")


async def test_a_doc_typed_into_is_read_from_its_new_rows(
    indexer: Indexer, store: GatedStore
) -> None:
    """The second re-index of a doc whose walk is kept reads only the rows after those it
    applied; a compacted doc is read whole again, and still found."""
    await write_text(store, NOTES, "alpha")
    await write_text(store, NOTES, " beta")
    await indexer.reindex_doc(NOTES)
    await write_text(store, NOTES, " gamma")
    await indexer.reindex_doc(NOTES)
    await indexer.flush()
    assert store.reads == [("load", 2), ("after", 1)]
    assert await find(indexer.index, "gamma") == ["notes"]
    stored = await store.load(NOTES)
    doc: Doc[Any] = Doc()
    for _, data in stored.updates:
        doc.apply_update(data)
    await store.compact(NOTES, doc.get_update(), stored.last_seq, stored.generation)
    await write_text(store, NOTES, " delta")
    store.reads.clear()
    await indexer.reindex_doc(NOTES)
    await indexer.flush()
    assert [kind for kind, _ in store.reads] == ["after", "load"]  # compacted: read whole
    assert await find(indexer.index, "delta") == ["notes"]


async def test_a_read_in_flight_cannot_bring_a_deleted_doc_back(
    indexer: Indexer, store: GatedStore
) -> None:
    await write_text(store, NOTES, "doomed words")
    await indexer.reindex_doc(NOTES)
    await indexer.flush()
    store.gate.clear()
    store.loading.clear()
    reading = asyncio.get_running_loop().create_task(indexer.reindex_doc(NOTES))
    await store.loading.wait()
    await store.delete_doc(NOTES)  # as the API does: the store first, then the index
    await indexer.drop_doc(NOTES)
    store.gate.set()
    await reading
    await wait_until(lambda: indexer.pending_docs() == 0, what="the read after the drop")
    await indexer.flush()
    assert await find(indexer.index, "doomed") == []
    await write_text(store, NOTES, "reborn words")
    await indexer.reindex_doc(NOTES)
    await indexer.flush()
    assert await find(indexer.index, "reborn") == ["notes"]


async def test_a_dropped_room_takes_everything_with_it(indexer: Indexer, store: GatedStore) -> None:
    await indexer.messages_written("r", [message("room secret")])
    await write_text(store, NOTES, "doc secret")
    await indexer.reindex_doc(NOTES)
    await indexer.drop_room("r")
    await indexer.messages_written("r", [message("room secret late", id="m9")])  # in flight
    await indexer.flush()
    assert await find(indexer.index, "secret") == []


async def test_close_hands_back_the_docs_still_waiting(store: GatedStore) -> None:
    indexer = Indexer(MemoryIndex(), store, Limits(), delay=60.0)
    indexer.start()
    indexer.doc_stored(NOTES)
    indexer.doc_stored(DocKey("r", "other"))
    assert sorted(await indexer.close()) == [("r", "notes"), ("r", "other")]
    indexer.doc_stored(NOTES)  # after close: ignored
    assert indexer.pending_docs() == 0


async def post(meta: MetaStore, room: str, text: str, cid: str) -> Message:
    new = NewMessage(room, f"{room}-{cid}", "u1", "U", None, cid, text, 100.0)
    return (await meta.post_message(new))[0]


async def test_rebuild_from_the_tables_and_the_store(store: GatedStore) -> None:
    meta = MemoryMetaStore()
    await meta.open()
    for room in ("a", "b"):
        await meta.create_room(room, room, "u1")
    await post(meta, "a", "archived 消息 one", "1")
    gone = await post(meta, "a", "deleted text", "2")
    await meta.delete_message("a", gone.id, 150.0)
    await post(meta, "b", "another room's message", "3")
    await write_text(store, DocKey("b", "plan"), "the plan doc")
    index = MemoryIndex()
    indexer = Indexer(index, store, Limits(), delay=0.0)
    indexer.start()
    await indexer.messages_written("old", [message("from a deleted room")])
    await indexer.reindex_doc(DocKey("b", "plan"))
    await write_text(store, DocKey("b", "stale"), "a doc deleted meanwhile")
    await indexer.reindex_doc(DocKey("b", "stale"))
    await store.delete_doc(DocKey("b", "stale"))
    await indexer.flush()
    report = await rebuild(indexer, meta, store)
    assert (report.rooms, report.messages, report.docs, report.dropped_rooms) == (2, 3, 1, 1)
    assert await find(index, "消息", "a") == ["a-1"] and await find(index, "deleted", "a") == []
    assert await find(index, "plan", "b") == ["plan"] and await find(index, "meanwhile", "b") == []
    assert await index.rooms() == ["a", "b"]
    assert (await index.open()).complete
    await indexer.close()


async def test_search_rebuilds_an_index_that_was_not_closed_cleanly(store: GatedStore) -> None:
    meta = MemoryMetaStore()
    await meta.create_room("a", "a", "u1")
    await post(meta, "a", "written while the index was away", "1")
    index = MemoryIndex()
    await index.set_complete(False)
    search = Search(index, meta, store, Limits(), delay=0.0)
    await search.open()
    assert search.rebuilding is not None
    await search.rebuilding
    page = await search.search(parse_query("away"), [Scope("a")])
    assert [h.key for h in page.hits] == ["a-1"]
    await search.close()


async def test_a_doc_that_keeps_changing_rests_between_re_indexes(store: GatedStore) -> None:
    """A commit after a quiet spell is indexed within ``delay``; one right after a re-index
    waits for the doc's rest (SUSTAINED x delay), however many commits come meanwhile."""
    indexer = Indexer(MemoryIndex(), store, Limits(), delay=0.1)
    runs: list[float] = []
    reindex = indexer.reindex_doc

    async def counted(key: DocKey) -> None:
        runs.append(asyncio.get_running_loop().time())
        await reindex(key)

    indexer.reindex_doc = counted  # type: ignore[method-assign]
    indexer.start()
    try:
        loop = asyncio.get_running_loop()
        started = loop.time()
        await write_text(store, NOTES, "first words")
        indexer.doc_stored(NOTES)
        await wait_until(lambda: len(runs) == 1, timeout=5)
        assert runs[0] - started >= 0.1
        await wait_until(lambda: indexer.pending_docs() == 0, timeout=5)
        for i in range(5):  # a typing session: commits every 40 ms
            await write_text(store, NOTES, f"more words {i}")
            indexer.doc_stored(NOTES)
            await asyncio.sleep(0.04)
        assert len(runs) == 1  # resting: 0.5 s after the first run
        await wait_until(lambda: len(runs) == 2, timeout=5)
        assert runs[1] - runs[0] >= 0.5 - 0.01
        await wait_until(lambda: indexer.pending_docs() == 0, timeout=5)
        await indexer.flush()
        assert len(await find(indexer.index, "more")) == 1  # the session's text, once
    finally:
        await indexer.close()


async def test_many_docs_due_at_once_are_indexed_in_turn_and_their_rests_stay_bounded(
    indexer: Indexer, store: GatedStore
) -> None:
    """A burst of commits over 200 docs: every one is indexed (one runner, in turn), and the
    rests they leave are pruned as they end instead of growing with every doc ever indexed."""
    keys = [DocKey("r", f"d{i}") for i in range(200)]
    for i, key in enumerate(keys):
        await write_text(store, key, f"word{i}x")
        indexer.doc_stored(key)
    await wait_until(lambda: indexer.pending_docs() == 0, what="every doc indexed")
    for i in (0, 99, 199):
        assert await find(indexer.index, f"word{i}x") == [f"d{i}"]
    # delay 0: each rest ends a few of its runs' durations later, so most ended long ago
    assert len(indexer._resting) <= 64, len(indexer._resting)


async def test_a_doc_that_stops_extracting_keeps_no_stale_text(
    indexer: Indexer, store: GatedStore
) -> None:
    """A doc indexed once, then given a row the extraction refuses (text inside a Y.Array):
    it is left out of the index (docs/search.md), not left findable by its old text."""
    await write_text(store, NOTES, "launch code 1234")
    await indexer.reindex_doc(NOTES)
    await indexer.flush()
    assert await find(indexer.index, "1234") == ["notes"]
    array = root_item("list", b"\x00", 7)  # a Y.Array holding a string item: refused
    await store.append(NOTES, [update((7, 0, [array, id_parent_item(7, 0, s("xyz"), 4)]))])
    await indexer.reindex_doc(NOTES)
    await indexer.flush()
    assert await find(indexer.index, "1234") == []
    assert await indexer.index.doc_names("r") == []


async def test_a_rebuild_forgets_messages_of_a_room_deleted_and_made_again(
    store: GatedStore,
) -> None:
    """The server died after a room's deletion, before its drop reached the index, and the id
    was taken again: the rebuild (the index was not closed cleanly) leaves none of the old
    room's messages to the new room's members, and keeps what the new room posts meanwhile."""
    meta = MemoryMetaStore()
    await meta.create_room("a", "a", "u1")
    await post(meta, "a", "the old room's secret", "1")
    index = MemoryIndex()
    indexer = Indexer(index, store, Limits(), delay=0.0)
    indexer.start()
    await rebuild(indexer, meta, store)
    assert await find(index, "secret", "a") == ["a-1"]
    await meta.delete_room("a")  # ... and the process ends before drop_room
    await meta.create_room("a", "a", "u2")
    kept = await post(meta, "a", "a new secret", "2")
    original = meta.get_message

    async def posted_meanwhile(room_id: str, message_id: str) -> Message | None:
        if message_id == "a-3":  # posted (and indexed) after the rebuild read the table
            return dataclasses.replace(kept, id="a-3", seq=2)
        return await original(room_id, message_id)

    meta.get_message = posted_meanwhile  # type: ignore[method-assign]
    late = dataclasses.replace(kept, id="a-3", seq=2, text="a late secret")
    await indexer.messages_written("a", [late])
    await rebuild(indexer, meta, store)
    assert sorted(await find(index, "secret", "a")) == ["a-2", "a-3"]
    await indexer.close()
