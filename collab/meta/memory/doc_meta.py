"""Document metadata in memory: (room, name) -> DocMeta."""

from __future__ import annotations

import dataclasses
from collections.abc import Collection

from collab.errors import Conflict
from collab.meta.doc_meta import DocMeta, doc_limit
from collab.meta.memory.base import MemoryKind


class MemoryDocMetas(MemoryKind):
    async def get_doc_meta(self, room_id: str, name: str) -> DocMeta | None:
        return self.tables.doc_meta.get((room_id, name))

    async def list_doc_meta(self, room_id: str) -> list[DocMeta]:
        found = [m for (room, _), m in self.tables.doc_meta.items() if room == room_id]
        return sorted(found, key=lambda m: m.name)

    async def put_doc_meta(
        self,
        room_id: str,
        name: str,
        *,
        title: str | None,
        kind: str | None,
        by: str,
        max_docs: int | None = None,
        stored: Collection[str] = (),
    ) -> tuple[DocMeta, bool]:
        now = self.clock()
        current = self.tables.doc_meta.get((room_id, name))
        if current is None:
            # The count and the insert: no await between them, one step on the event loop.
            if max_docs is not None:
                names = self.described_docs(room_id)
                names.update(stored)
                if name not in names and len(names) >= max_docs:
                    raise doc_limit()
            meta = DocMeta(room_id, name, title or name, kind or "text", by, now, by, now)
            self.tables.doc_meta[(room_id, name)] = meta
            return meta, True
        if kind is not None and kind != current.kind:
            raise Conflict("a document's kind is set once")
        meta = dataclasses.replace(
            current,
            title=title if title is not None else current.title,
            updated_by=by,
            updated_at=now,
        )
        self.tables.doc_meta[(room_id, name)] = meta
        return meta, False

    def described_docs(self, room_id: str) -> set[str]:
        """The names of the room's described docs, read without an await: what the memory
        document store counts with its stored docs in a first update's doc cap
        (``collab.store.memory.MemoryStore``, linked by ``collab.meta.described_docs``)."""
        return {n for (room, n) in self.tables.doc_meta if room == room_id}

    async def delete_doc_meta(self, room_id: str, name: str) -> None:
        self.tables.doc_meta.pop((room_id, name), None)
