"""The SearchIndex seam: what the server indexes and asks, whatever engine answers.

SQLite answers with FTS5 and its trigram tokenizer (``collab.search.sqlite``, a database file
of its own beside the main one); ``memory://`` with a plain Python twin
(``collab.search.memory``); PostgreSQL with pg_trgm in the store's database
(``collab.search.postgres``). All three run the same contract suite (tests/search/test_index.py).

Every write is **versioned**, so writes may arrive late, twice or out of order (the live feed
and a rebuild race freely) and the index still converges on the newest state:

- an ``Entry`` replaces the stored one of the same (kind, room, key) only when its ``version``
  is greater (a message: its last edit's time, or ``DELETED`` once deleted, which nothing
  outranks; a doc: when its text was read from the store);
- a deleted message or doc stays as a tombstone (``deleted``, no text) so that an older write
  arriving after the deletion cannot bring it back;
- a ``Drop`` of a room removes every entry of the room older than ``at`` and refuses every
  later write whose state was the table's only before ``at`` (``written_at``: its ``seen``, or
  ``at``): a write of the deleted room that was still in flight cannot resurface in a new room
  created under the same id. A message's ``seen`` is when its row last changed, or when a read
  of the table that returned it began: a row read after the drop, or edited or deleted after
  it, is the new room's own and is taken even though its ``at`` (its posting time) is older,
  so a room made again and posted to before its predecessor's drop reached the index keeps
  those messages (``collab.search.rebuild.refill_room``) and their later edits.

Entries are ordered newest first by an integer ``id`` the index derives from ``at``
(microseconds); the cursor of a page is the last id returned.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from collab.search.query import Query

Kind = Literal["chat", "doc"]
KINDS: tuple[Kind, ...] = ("chat", "doc")
DELETED = 1e300  # a deleted message's version: final
SCAN_ROWS = 20_000  # entries a query of only short terms examines per page (docs/search.md)


@dataclass(frozen=True)
class Entry:
    """One indexed thing: a chat message (key: its id) or a shared doc (key: its name)."""

    kind: Kind
    room: str
    key: str
    text: str  # "" for a tombstone
    at: float  # the time shown: when posted, or when the doc's text was read
    version: float
    deleted: bool = False
    author: str | None = None  # chat: the author's user id
    seq: int | None = None  # chat: the message's seq in its room
    seen: float | None = None  # its state was the table's at this time, or later (None: at)


@dataclass(frozen=True)
class Drop:
    """Forget a room's entries older than ``at`` (and refuse older writes from now on)."""

    room: str
    at: float


Write = Entry | Drop


@dataclass(frozen=True)
class Scope:
    """What one room lets the caller find: its chat, and every doc or only ``docs``."""

    room: str
    chat: bool = True
    docs: tuple[str, ...] | None = None  # None: every doc of the room


@dataclass(frozen=True)
class Hit:
    id: int  # the cursor
    kind: Kind
    room: str
    key: str
    at: float
    author: str | None
    seq: int | None
    snippet: str
    highlights: tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class Page:
    hits: list[Hit]
    next_before: int | None  # pass as ``before`` for the next page; None: nothing more


@dataclass(frozen=True)
class Counts:
    chat: int  # live (not deleted) messages
    docs: int  # live docs
    tombstones: int


@dataclass(frozen=True)
class IndexState:
    """What ``open`` found: whether the last server closed the index cleanly, whether a
    rebuild ever completed, and the docs whose re-indexing a clean close left pending."""

    clean: bool
    complete: bool
    pending_docs: tuple[tuple[str, str], ...] = ()
    new: bool = False  # created by this open (none was there, or of another schema version)


class SearchIndex(Protocol):
    async def open(self) -> IndexState:
        """Open (creating an empty index if there is none) and mark it in use (not clean)."""

    async def close(self, pending_docs: Sequence[tuple[str, str]] = ()) -> None:
        """Mark it closed cleanly, remembering docs still to re-index; release everything."""

    async def apply(self, writes: Sequence[Write]) -> None:
        """Apply versioned writes, in order, in one short transaction."""

    async def search(
        self,
        query: Query,
        scopes: Sequence[Scope],
        *,
        kind: Kind | None = None,
        before: int | None = None,
        limit: int = 20,
        deadline: float | None = None,
    ) -> Page:
        """Live entries in ``scopes`` matching every term, newest first, ids below ``before``.

        ``deadline`` (``time.monotonic()``): past it, raise ``QueryTooSlow``."""

    async def doc_names(self, room: str) -> list[str]:
        """The live docs indexed for ``room``."""

    async def rooms(self) -> list[str]:
        """Every room with an entry (tombstones included)."""

    async def messages(self, room: str, after: int, limit: int) -> list[tuple[int, int, str]]:
        """(id, seq, key) of the live messages indexed for ``room``, the first ``limit`` with
        ids above ``after``, in id order (a rebuild checks them against the table)."""

    async def set_complete(self, complete: bool) -> None:
        """Record whether a full rebuild has completed (a rebuild starts by clearing it)."""

    async def counts(self) -> Counts: ...


class QueryTooSlow(Exception):
    """A search ran past its deadline and was interrupted."""


def accepts(entry: Entry, current_version: float | None, dropped_at: float | None) -> bool:
    """Whether ``entry`` replaces what is stored (the versioning rules of the module doc).

    PostgreSQL applies these rules (and ``keeps_id``, ``entry_id``) in SQL: ``search_put`` in
    migrations/postgresql/0051_search_seen.sql; the contract suite holds both to them."""
    if dropped_at is not None and written_at(entry) <= dropped_at:
        return False
    return current_version is None or entry.version > current_version


def written_at(entry: Entry) -> float:
    """What a room's drop compares: when the entry's state was known to be the table's."""
    return entry.at if entry.seen is None else max(entry.at, entry.seen)


def keeps_id(entry: Entry) -> bool:
    """A message keeps its place (posting time) when edited; a doc moves to its latest read."""
    return entry.kind == "chat"


def entry_id(at: float) -> int:
    """The id an entry written at ``at`` would like (the index makes it unique)."""
    return max(1, int(at * 1_000_000))
