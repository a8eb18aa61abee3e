"""One document in memory: the pycrdt Doc, its nesting index, and what it already holds.

The replica applies an update inside ``doc.transaction(origin=...)`` and *returns* what the Doc
emitted (nothing: the update was a duplicate), catching what yrs raises (a pyo3 panic is a
BaseException). A replica yrs refused may be half-applied: ``rebuild`` makes a fresh Doc from
the stored rows plus the emitted-but-uncommitted updates, in a worker thread, because a large
doc takes a while to apply and a cold load or a heal must not stall every other room.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import anyio.to_thread
from pycrdt import Doc, TransactionEvent

from collab.errors import HostileInput, must_propagate
from collab.store.base import StoredDoc
from collab.sync.known import KnownState
from collab.wire import DocIndex, IndexDelta, Limits, UpdateInfo, scan_update


def _build_doc(
    stored: StoredDoc, uncommitted: list[bytes], limits: Limits, reindex: bool
) -> tuple[Doc[Any], DocIndex | None]:
    doc: Doc[Any] = Doc()
    with doc.transaction(origin="store"):
        if stored.snapshot:
            doc.apply_update(stored.snapshot)
        for _, update in stored.updates:
            doc.apply_update(update)
        for update in uncommitted:
            doc.apply_update(update)
    return doc, DocIndex.from_update(doc.get_update(), limits) if reindex else None


class Replica:
    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.doc: Doc[Any] = Doc()
        self.index = DocIndex(limits)
        self.version = 0  # bumped whenever the Doc changes (the cache key of ``_known``)
        self._known = KnownState(limits)
        self._emitted: list[bytes] = []

    async def rebuild(
        self, stored: StoredDoc, uncommitted: list[bytes], *, reindex: bool = True
    ) -> None:
        """A fresh Doc from ``stored`` plus ``uncommitted``.

        A heal passes ``reindex=False`` and keeps the index: it was only ever committed after
        successful applies, so it already describes exactly what the store and the uncommitted
        updates hold (minus pending structs, which are dropped).
        """
        doc, index = await anyio.to_thread.run_sync(
            _build_doc, stored, list(uncommitted), self.limits, reindex
        )
        if index is not None:
            self.index = index
        else:
            self.index.drop_pending()
        doc.observe(self._capture)
        self.doc = doc
        self.version += 1

    def _capture(self, event: TransactionEvent) -> None:
        self._emitted.append(event.update)

    # -- reading ---------------------------------------------------------------------------

    def state_vector(self) -> bytes:
        return self.doc.get_state()

    def diff(self, state_vector: bytes) -> bytes:
        """What the Doc holds beyond ``state_vector`` (a SyncStep2 payload)."""
        return self.doc.get_update(state_vector)

    def snapshot(self) -> bytes:
        return self.doc.get_update()

    def adds_nothing(self, info: UpdateInfo) -> bool:
        """Whether the scanned update would change nothing (an echo, an empty SyncStep2)."""
        return self._known.adds_nothing(self.doc, self.version, info)

    # -- writing ---------------------------------------------------------------------------

    def check(self, info: UpdateInfo) -> IndexDelta:
        """The nesting index's verdict on ``info``, not yet committed (raises MalformedInput)."""
        return self.index.check(info)

    def apply(self, update: bytes, delta: IndexDelta, origin: object) -> tuple[list[bytes], float]:
        """Apply a checked update; (the updates the Doc emitted, seconds it took).

        Raises HostileInput when yrs refuses it: the Doc may be half-applied, so the caller
        rebuilds it before anyone reads it again.
        """
        self._emitted = []
        started = time.perf_counter()
        try:
            with self.doc.transaction(origin=origin):
                self.doc.apply_update(update)
        except BaseException as exc:  # pyo3 PanicException is a BaseException
            if must_propagate(exc):
                raise
            self._emitted = []
            raise HostileInput("update rejected") from exc
        elapsed = time.perf_counter() - started
        emitted, self._emitted = self._emitted, []
        self.index.commit(delta)
        if emitted:
            self.version += 1
        return emitted, elapsed

    def author(self, change: Callable[[Doc[Any]], None], origin: object) -> tuple[list[bytes], int]:
        """Run a server-authored ``change`` in one transaction: (the updates the Doc emitted,
        clock units it deleted). What the server writes is indexed like any update, so the
        nesting index keeps describing the whole Doc."""
        self._emitted = []
        with self.doc.transaction(origin=origin):
            change(self.doc)
        emitted, self._emitted = self._emitted, []
        deleted = 0
        for update in emitted:
            info = scan_update(update, self.limits)
            self.index.commit(self.index.check(info))
            deleted += sum(length for _, _, length in info.deletes)
        if emitted:
            self.version += 1
        return emitted, deleted
