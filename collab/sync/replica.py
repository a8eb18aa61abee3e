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
from collab.wire import (
    DocIndex,
    IndexDelta,
    Limits,
    MalformedInput,
    UpdateInfo,
    deleted_length,
    scan_update,
)

# Server-authored updates the nesting index has not taken in yet, at most (past it: the index
# is rebuilt from the whole Doc if it is ever consulted).
MAX_UNINDEXED = 64


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
        self._deletes: list[bytes] | None = None  # the delete sets, while ``author`` runs
        # What ``author`` emitted since the index was last consulted (``_catch_up``), or None
        # when there was too much of it: the index is then rebuilt from the Doc.
        self._unindexed: list[bytes] | None = []

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
            self._unindexed = []
        else:
            self.index.drop_pending()
        doc.observe(self._capture)
        self.doc = doc
        self.version += 1

    def _capture(self, event: TransactionEvent) -> None:
        self._emitted.append(event.update)
        if self._deletes is not None:
            self._deletes.append(event.delete_set)  # type: ignore[attr-defined]  # not in the stubs

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
        self._catch_up()
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
        clock units it deleted, from the transaction's delete set). What the server writes is
        indexed like any update, but only when the index is next consulted (``check``: a
        client's or another node's update): a doc only the server writes (``chat``) never
        pays for scanning its own updates."""
        self._emitted, self._deletes = [], []
        try:
            with self.doc.transaction(origin=origin):
                change(self.doc)
            deleted = sum(map(deleted_length, self._deletes))
        finally:
            emitted, self._emitted, self._deletes = self._emitted, [], None
        if emitted:
            self.version += 1
            if self._unindexed is not None and len(self._unindexed) < MAX_UNINDEXED:
                self._unindexed += emitted
            else:
                self._unindexed = None
        return emitted, deleted

    def _catch_up(self) -> None:
        """Index what ``author`` emitted since the index was last consulted."""
        if self._unindexed == []:
            return
        try:
            for update in self._unindexed or ():
                self.index.commit(self.index.check(scan_update(update, self.limits)))
        except MalformedInput:  # past a limit meant for one client frame: take the whole Doc
            self._unindexed = None
        if self._unindexed is None:
            self.index = DocIndex.from_update(self.doc.get_update(), self.limits)
        self._unindexed = []
