"""pycrdt-websocket 0.16.5 as a server, the way its documentation wires it.

``WebsocketServer`` behind ``ASGIServer`` on uvicorn; every room gets its own ``SQLiteYStore``
(one database file, keyed by the room's path) and is loaded from it before it syncs. Library
defaults otherwise (``auto_clean_rooms=True``); nothing works around its known defects.

    python pycrdt_ws.py --port P --data FILE.db [--deflate]
"""

from __future__ import annotations

import argparse
import asyncio
import logging

import uvicorn
from pycrdt.store import SQLiteYStore, YDocNotFound
from pycrdt.websocket import ASGIServer, WebsocketServer, YRoom


class StoredRoomsServer(WebsocketServer):
    """A WebsocketServer whose rooms persist to one SQLite database (pycrdt.store)."""

    def __init__(self, db_path: str, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.store_class = type("BenchYStore", (SQLiteYStore,), {"db_path": db_path})
        self.loading: dict[str, asyncio.Lock] = {}

    async def get_room(self, name: str) -> YRoom:
        # Clients joining a new room together must wait for one load (without this lock the
        # second joiner gets the room half-started and neither ever syncs).
        lock = self.loading.setdefault(name, asyncio.Lock())
        async with lock:
            return await self._get_room(name)

    async def _get_room(self, name: str) -> YRoom:
        if name not in self.rooms:
            ystore = self.store_class(path=name, log=self.log)
            room = YRoom(ready=False, ystore=ystore, log=self.log)
            self.rooms[name] = room
            await self.start_room(room)
            await ystore.started.wait()
            try:
                await ystore.apply_updates(room.ydoc)
            except YDocNotFound:
                pass
            room.ready = True
        room = self.rooms[name]
        await self.start_room(room)
        await room.ydoc_observed.wait()
        return room


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--data", required=True, help="SQLite file of the YStores")
    parser.add_argument("--deflate", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    websocket_server = StoredRoomsServer(args.data, rooms_ready=True)
    app = ASGIServer(websocket_server)
    async with websocket_server:
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=args.port,
            ws_per_message_deflate=args.deflate,
            log_level="warning",
        )
        await uvicorn.Server(config).serve()


if __name__ == "__main__":
    asyncio.run(main())
