"""An in-process DocumentStore: the twin every contract test also runs against."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Collection, Sequence

from collab.names import DocKey
from collab.store.base import DocInfo, GenerationGone, StoredDoc, doc_limit


class MemoryStore:
    """Keeps everything in dicts; lost on exit. For tests and ``memory://``.

    ``described`` gives the names of a room's docs described in the meta store (a server on
    ``memory://`` passes ``MemoryMetaStore.described_docs``, read without an await): a first
    update's ``max_docs`` counts them with the stored docs, in the same step, as the SQL
    stores read ``doc_meta`` in their own database."""

    def __init__(self, described: Callable[[str], Collection[str]] | None = None) -> None:
        self._docs: dict[DocKey, StoredDoc] = {}
        self._described = described
        self._closed = False

    async def open(self) -> None:
        self._closed = False

    async def close(self) -> None:
        self._closed = True

    async def ping(self) -> None:
        return None

    async def load(self, key: DocKey) -> StoredDoc:
        stored = self._docs.get(key)
        if stored is None:
            return StoredDoc()
        return StoredDoc(
            generation=stored.generation,
            snapshot=stored.snapshot,
            snapshot_seq=stored.snapshot_seq,
            updates=list(stored.updates),
        )

    async def append(
        self,
        key: DocKey,
        updates: Sequence[bytes],
        *,
        generation: str | None = None,
        max_docs: int | None = None,
    ) -> int:
        stored = self._docs.get(key)
        if generation is not None and (stored is None or stored.generation != generation):
            raise GenerationGone(key, generation, None if stored is None else stored.generation)
        if stored is None:
            # The count and the insert: no await between them, one step on the event loop.
            if max_docs is not None and not self._room_has_space(key, max_docs):
                raise doc_limit()
            stored = self._docs[key] = StoredDoc(generation=uuid.uuid4().hex)
        seq = stored.last_seq
        for update in updates:
            seq += 1
            stored.updates.append((seq, bytes(update)))
        return seq

    async def updates_after(self, key: DocKey, seq: int) -> StoredDoc:
        stored = self._docs.get(key)
        if stored is None:
            return StoredDoc()
        if stored.snapshot_seq > seq:
            return await self.load(key)
        rows = [(s, u) for s, u in stored.updates if s > seq]
        return StoredDoc(stored.generation, None, stored.snapshot_seq, rows)

    async def compact(
        self, key: DocKey, snapshot: bytes, upto_seq: int, generation: str | None = None
    ) -> None:
        stored = self._docs.get(key)
        if stored is None or stored.snapshot_seq > upto_seq:
            return  # deleted meanwhile, or a newer snapshot is stored: as SQLite's UPDATE
        if generation is not None and stored.generation != generation:
            return
        stored.snapshot = bytes(snapshot)
        stored.snapshot_seq = upto_seq
        stored.updates = [(s, u) for s, u in stored.updates if s > upto_seq]

    async def list_docs(self, room: str) -> list[DocInfo]:
        return [
            DocInfo(key.doc, stored.generation or "", stored.size, stored.last_seq)
            for key, stored in sorted(self._docs.items())
            if key.room == room
        ]

    async def count_docs(self, room: str) -> int:
        return self._count(room)

    def _count(self, room: str) -> int:
        return sum(1 for key in self._docs if key.room == room)

    def _room_has_space(self, key: DocKey, max_docs: int) -> bool:
        """Whether the room may gain ``key``'s doc: it is described already (counted), or the
        room's docs, stored or described, are fewer than ``max_docs``."""
        names = {stored.doc for stored in self._docs if stored.room == key.room}
        if self._described is not None:
            names.update(self._described(key.room))
        return key.doc in names or len(names) < max_docs

    async def delete_doc(self, key: DocKey) -> None:
        self._docs.pop(key, None)
