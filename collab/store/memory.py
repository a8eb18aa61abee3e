"""An in-process DocumentStore: the twin every contract test also runs against."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from collab.names import DocKey
from collab.store.base import StoredDoc


class MemoryStore:
    """Keeps everything in dicts; lost on exit. For tests and ``memory://``."""

    def __init__(self) -> None:
        self._docs: dict[DocKey, StoredDoc] = {}
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

    async def append(self, key: DocKey, updates: Sequence[bytes]) -> int:
        stored = self._docs.get(key)
        if stored is None:
            stored = self._docs[key] = StoredDoc(generation=uuid.uuid4().hex)
        seq = stored.last_seq
        for update in updates:
            seq += 1
            stored.updates.append((seq, bytes(update)))
        return seq

    async def compact(self, key: DocKey, snapshot: bytes, upto_seq: int) -> None:
        stored = self._docs[key]
        stored.snapshot = bytes(snapshot)
        stored.snapshot_seq = max(stored.snapshot_seq, upto_seq)
        stored.updates = [(s, u) for s, u in stored.updates if s > upto_seq]
