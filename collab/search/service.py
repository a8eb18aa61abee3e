"""``Search``: the index, its live feed and its rebuild, opened and closed with the server.

On open it reads how the index was left: closed cleanly and completely built, it only
re-indexes the docs whose turn the last close cut short; otherwise (a new index, a crash, a
rebuild that never finished, a restored backup) it rebuilds in the background while the
server serves, answering from what is already indexed meanwhile. Queries run under a
deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence

from collab import logs
from collab.meta import MetaStore
from collab.names import DocKey
from collab.search.index import Kind, Page, Scope, SearchIndex
from collab.search.indexer import Indexer
from collab.search.query import Query
from collab.search.rebuild import rebuild, refill_room
from collab.store.base import DocumentStore
from collab.wire import Limits

log = logging.getLogger("collab.search")

QUERY_SECONDS = 2.0  # a query still running after this is interrupted (HTTP 400)


class Search:
    def __init__(
        self,
        index: SearchIndex,
        meta: MetaStore,
        store: DocumentStore,
        limits: Limits,
        *,
        delay: float = 1.0,
    ) -> None:
        self.index = index
        self.meta = meta
        self.store = store
        self.indexer = Indexer(index, store, limits, delay=delay)
        self.rebuilding: asyncio.Task[None] | None = None

    async def open(self) -> None:
        state = await self.index.open()
        self.indexer.start()
        if state.clean and state.complete:
            for room, doc in state.pending_docs:
                self.indexer.doc_stored(DocKey(room, doc))
            return
        if state.new:
            log.info("building the search index in the background")
        else:
            why = "was not closed cleanly" if state.complete else "was never completely built"
            log.warning("the search index %s: rebuilding it in the background", why)
        self.rebuilding = asyncio.get_running_loop().create_task(
            self._rebuild(), context=logs.detached()
        )

    async def _rebuild(self) -> None:
        try:
            await rebuild(self.indexer, self.meta, self.store)
        except Exception:
            log.exception("search index rebuild failed; it is tried again at the next start")

    async def close(self) -> None:
        if self.rebuilding is not None:
            self.rebuilding.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.rebuilding
        pending = await self.indexer.close()
        await self.index.close(pending)

    async def drop_doc(self, key: DocKey) -> None:
        """The doc was deleted from the store (``Indexer.drop_doc``)."""
        await self.indexer.drop_doc(key)

    async def drop_room(self, room_id: str) -> None:
        """The room was deleted from the tables and the store: its entries go, then what the
        tables and the store hold under its id now (a room made again meanwhile) is indexed."""
        await self.indexer.drop_room(room_id)
        await refill_room(self.indexer, self.meta, self.store, room_id)

    async def search(
        self,
        query: Query,
        scopes: Sequence[Scope],
        *,
        kind: Kind | None = None,
        before: int | None = None,
        limit: int = 20,
    ) -> Page:
        deadline = time.monotonic() + QUERY_SECONDS
        return await self.index.search(
            query, scopes, kind=kind, before=before, limit=limit, deadline=deadline
        )
