"""The DocumentStore seam: per-document append-only logs of emitted updates plus a snapshot.

Every backend (memory, SQLite, later PostgreSQL) implements this small Protocol and passes the
same contract suite (tests/store/test_contract.py). Sequence numbers are per document and
gapless, so a later multi-node fan-out can name any update by (doc, seq). Failures are
``collab.db.StoreError``; an append naming a generation the doc no longer has raises
``GenerationGone`` (several nodes: the doc was deleted or re-created through another one).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from collab.db.errors import StoreError
from collab.errors import LimitReached, Quota
from collab.names import DocKey


class GenerationGone(StoreError):
    """An append expected a generation of the doc that is no longer stored: the doc was deleted
    (``current`` None) or deleted and re-created (``current``, the new one). Nothing was
    written: the updates belonged to a doc that is gone, and must not bring it back.

    (A journal also raises it, ``expected`` None, when the doc its first append created is gone
    by the time it reads the generation back: ``collab.sync.journal``.)"""

    def __init__(self, key: DocKey, expected: str | None, current: str | None) -> None:
        self.key = key
        self.expected = expected
        self.current = current
        what = "deleted" if current is None else f"re-created as {current}"
        was = "the doc its first append created" if expected is None else f"generation {expected}"
        super().__init__(f"{key.room}/{key.doc}: {was} is gone ({what})")


def doc_limit() -> LimitReached:
    """A first update refused at ``max_docs_per_room`` (4403, as the join's check)."""
    return LimitReached(Quota.docs_per_room, "document limit of this room reached")


@dataclass
class StoredDoc:
    """What a load returns: the snapshot and the log rows that follow it."""

    generation: str | None = None
    snapshot: bytes | None = None
    snapshot_seq: int = 0
    updates: list[tuple[int, bytes]] = field(default_factory=list)

    @property
    def exists(self) -> bool:
        return self.generation is not None

    @property
    def last_seq(self) -> int:
        return self.updates[-1][0] if self.updates else self.snapshot_seq

    @property
    def log_bytes(self) -> int:
        return sum(len(u) for _, u in self.updates)

    @property
    def size(self) -> int:
        return len(self.snapshot or b"") + self.log_bytes


@dataclass(frozen=True)
class DocInfo:
    """One stored doc of a room, as the docs API lists it."""

    name: str
    generation: str
    size: int  # stored bytes: snapshot plus log
    updated_seq: int  # the seq of its latest update


class DocumentStore(Protocol):
    async def open(self) -> None:
        """Connect, apply nothing: migrations are the caller's explicit step."""

    async def close(self) -> None:
        """Wait for the last commit, then release every resource."""

    async def ping(self) -> None:
        """Raise StoreError unless the store answers a trivial query."""

    async def load(self, key: DocKey) -> StoredDoc:
        """The doc's snapshot and log; an empty StoredDoc when it does not exist."""

    async def append(
        self,
        key: DocKey,
        updates: Sequence[bytes],
        *,
        generation: str | None = None,
        max_docs: int | None = None,
    ) -> int:
        """Durably append updates (one transaction, grouped with concurrent appends).

        Returns the seq of the last row written; when this returns, the rows are committed.
        Without ``generation`` (a doc loaded empty), the first update creates the doc, and
        appending to a doc another node created meanwhile is a CRDT merge, allowed. With it,
        the rows are written only if the doc exists with that generation, checked in the
        append's own transaction; otherwise nothing is written and ``GenerationGone`` says
        whether it was deleted or re-created: a node that has not heard of a delete yet must
        not bring the doc back with its stray updates, nor put them in its successor. In a
        group commit, one doc's mismatch fails only the appends of that doc.

        With ``max_docs``, an append that would create the doc does so only while the room
        has fewer docs (``max_docs_per_room``: the docs stored and, where the meta store shares
        the database, the docs described in its ``doc_meta``, one of which may be created; on
        ``memory://``, those the memory meta store describes, ``MemoryStore(described=)``),
        counted in the creating step itself: appends creating docs at once, on several nodes
        too, cannot together pass the cap. Past it: ``LimitReached``, nothing written.
        """

    async def updates_after(self, key: DocKey, seq: int) -> StoredDoc:
        """What a replica holding every update up to ``seq`` lacks (a node catching up).

        The log rows with seq > ``seq``, with the doc's generation and ``snapshot_seq``, and no
        snapshot; but when some of those rows were already folded into the snapshot
        (``snapshot_seq > seq``), the whole doc instead, as ``load`` returns it. A missing doc:
        an empty StoredDoc (no generation).
        """

    async def compact(
        self, key: DocKey, snapshot: bytes, upto_seq: int, generation: str | None = None
    ) -> None:
        """Replace the snapshot and delete exactly the rows with seq <= upto_seq, atomically.

        Only when the stored snapshot is not newer (its ``snapshot_seq <= upto_seq``) and, if
        ``generation`` is given, the doc is still that generation: several nodes may compact
        one doc, and an older snapshot must never replace a newer one whose rows are gone, nor
        a deleted doc's snapshot land on its re-creation. Otherwise nothing changes.
        """

    async def list_docs(self, room: str) -> list[DocInfo]:
        """The room's stored docs, by name."""

    async def count_docs(self, room: str) -> int:
        """How many docs the room stores (the max_docs_per_room cap counts these)."""

    async def delete_doc(self, key: DocKey) -> None:
        """Delete the doc's rows; a later first update re-creates it with a new generation (an
        append naming the old one raises ``GenerationGone``)."""
