"""The in-process SearchIndex for ``memory://``: the contract's reference, in plain Python.

It matches like the trigram index: a term of three characters or more anywhere in the text, any
letter's case ignored; a shorter one as SQLite's LIKE would (A-Z only), over at most
``SCAN_ROWS`` entries per page when the query has only short terms.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence

from collab.search.index import (
    SCAN_ROWS,
    Counts,
    Drop,
    Entry,
    Hit,
    IndexState,
    Kind,
    Page,
    QueryTooSlow,
    Scope,
    Write,
    accepts,
    entry_id,
    keeps_id,
)
from collab.search.query import Query
from collab.search.snippets import Snippet, clean_text, fold, fold_ascii, make_snippet


class MemoryIndex:
    def __init__(self) -> None:
        self._rows: dict[int, Entry] = {}
        self._ids: dict[tuple[str, str, str], int] = {}
        self._dropped: dict[str, float] = {}
        self._complete = True  # memory:// starts empty, like its stores: nothing to rebuild
        self._pending: tuple[tuple[str, str], ...] = ()

    async def open(self) -> IndexState:
        return IndexState(clean=True, complete=self._complete, pending_docs=self._pending)

    async def close(self, pending_docs: Sequence[tuple[str, str]] = ()) -> None:
        self._pending = tuple(pending_docs)

    async def apply(self, writes: Sequence[Write]) -> None:
        for write in writes:
            if isinstance(write, Drop):
                self._drop(write)
            else:
                self._put(write)

    def _drop(self, drop: Drop) -> None:
        self._dropped[drop.room] = max(drop.at, self._dropped.get(drop.room, drop.at))
        for row_id, entry in list(self._rows.items()):
            if entry.room == drop.room and entry.at < drop.at:
                del self._rows[row_id]
                del self._ids[(entry.kind, entry.room, entry.key)]

    def _put(self, entry: Entry) -> None:
        address = (entry.kind, entry.room, entry.key)
        row_id = self._ids.get(address)
        current = self._rows[row_id].version if row_id is not None else None
        if not accepts(entry, current, self._dropped.get(entry.room)):
            return
        entry = dataclasses.replace(entry, text="" if entry.deleted else clean_text(entry.text))
        if row_id is not None and keeps_id(entry):
            self._rows[row_id] = entry
            return
        if row_id is not None:
            del self._rows[row_id]
        new_id = entry_id(entry.at)
        while new_id in self._rows:
            new_id += 1
        self._rows[new_id] = entry
        self._ids[address] = new_id

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
        allowed = {scope.room: scope for scope in scopes}
        long = [fold(t.text) for t in query.long_terms]
        short = [fold_ascii(t.text) for t in query.short_terms]
        needles = [(n, False) for n in long] + [(n, True) for n in short]
        hits: list[Hit] = []
        examined: list[int] = []
        for row_id in sorted(self._rows, reverse=True):
            if before is not None and row_id >= before:
                continue
            if deadline is not None and time.monotonic() > deadline:
                raise QueryTooSlow()
            entry = self._rows[row_id]
            if entry.deleted or not _in_scope(entry, allowed.get(entry.room), kind):
                continue
            if not long:  # a scan: at most SCAN_ROWS entries of the scopes per page
                if len(examined) == SCAN_ROWS:
                    return Page(hits, examined[-1])
                examined.append(row_id)
            folded = fold(entry.text)
            if all(n in folded for n in long) and all(n in fold_ascii(entry.text) for n in short):
                if len(hits) == limit:
                    return Page(hits, hits[-1].id)
                hits.append(_hit(row_id, entry, make_snippet(entry.text, needles)))
        return Page(hits, None)

    async def doc_names(self, room: str) -> list[str]:
        return sorted(
            e.key
            for e in self._rows.values()
            if e.room == room and e.kind == "doc" and not e.deleted
        )

    async def rooms(self) -> list[str]:
        return sorted({e.room for e in self._rows.values()})

    async def messages(self, room: str, after: int, limit: int) -> list[tuple[int, int, str]]:
        found = [
            (row_id, e.seq or 0, e.key)
            for row_id, e in self._rows.items()
            if row_id > after and e.room == room and e.kind == "chat" and not e.deleted
        ]
        return sorted(found)[:limit]

    async def set_complete(self, complete: bool) -> None:
        self._complete = complete

    async def counts(self) -> Counts:
        live = [e for e in self._rows.values() if not e.deleted]
        return Counts(
            chat=sum(e.kind == "chat" for e in live),
            docs=sum(e.kind == "doc" for e in live),
            tombstones=len(self._rows) - len(live),
        )


def _in_scope(entry: Entry, scope: Scope | None, kind: Kind | None) -> bool:
    if scope is None or (kind is not None and entry.kind != kind):
        return False
    if entry.kind == "chat":
        return scope.chat
    return scope.docs is None or entry.key in scope.docs


def _hit(row_id: int, entry: Entry, snippet: Snippet) -> Hit:
    return Hit(
        row_id,
        entry.kind,
        entry.room,
        entry.key,
        entry.at,
        entry.author,
        entry.seq,
        snippet.text,
        snippet.highlights,
    )
