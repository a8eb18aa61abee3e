"""In-process fixtures for the update path: a memory store whose calls the test can hold or
fail, peers without a socket (frames stay in their queue), and frame builders."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from pycrdt import Doc, Text

from collab.names import DocKey
from collab.settings import Settings
from collab.store.base import StoredDoc
from collab.store.memory import MemoryStore
from collab.sync.peer import Peer
from collab.wire import framing

KEY = DocKey("r", "d")


class GatedStore(MemoryStore):
    """A memory store whose loads and appends wait for the test to open a gate."""

    def __init__(self) -> None:
        super().__init__()
        self.loads = 0
        self.appends = 0
        self.load_gate = asyncio.Event()
        self.load_gate.set()
        self.append_gate = asyncio.Event()
        self.append_gate.set()
        self.fail_loads = False
        self.fail_appends_for: set[DocKey] = set()

    async def load(self, key: DocKey) -> StoredDoc:
        self.loads += 1
        await self.load_gate.wait()
        if self.fail_loads:
            raise OSError("disk on fire")
        return await super().load(key)

    async def append(
        self,
        key: DocKey,
        updates: Sequence[bytes],
        *,
        generation: str | None = None,
        max_docs: int | None = None,
    ) -> int:
        self.appends += 1
        await self.append_gate.wait()
        if key in self.fail_appends_for:
            raise OSError("disk full")
        return await super().append(key, updates, generation=generation, max_docs=max_docs)


def make_peer(*, readonly: bool = False) -> Peer:
    return Peer(None, max_queue_bytes=1 << 20, send_timeout=1.0, readonly=readonly)


def sent(peer: Peer) -> list[bytes]:
    return list(peer._queue or ())  # None: nothing queued (made when a frame waits)


def text_update(text: str, doc: Doc[Any] | None = None) -> bytes:
    """A Yjs update inserting ``text`` (into ``doc`` if given, so edits can build on it)."""
    doc = doc if doc is not None else Doc()
    before = doc.get_state()
    doc.get("text", type=Text).insert(0, text)
    return doc.get_update(before)


def edit(text: str) -> bytes:
    return framing.sync_update(text_update(text))


def settings(**kw: Any) -> Settings:
    return Settings(store="memory://", **kw)
