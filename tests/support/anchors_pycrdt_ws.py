"""pycrdt-websocket 0.16.5 as a server, the way its documentation wires it: the anchor.

Run as ``python tests/support/anchors_pycrdt_ws.py PORT DB_PATH [--no-auto-clean-rooms]``. One
``WebsocketServer`` behind ``ASGIServer`` on uvicorn; every room gets its own ``SQLiteYStore``
(one shared database file, keyed by the room's path) and is loaded from it before it syncs.
Nothing here works around the library's defects: tests/test_anchor_defects.py shows them.
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
        self.store_class = type("AnchorYStore", (SQLiteYStore,), {"db_path": db_path})

    async def get_room(self, name: str) -> YRoom:
        if name not in self.rooms:
            ystore = self.store_class(path=name, log=self.log)
            room = YRoom(ready=False, ystore=ystore, log=self.log)
            self.rooms[name] = room
            # Starting the room starts its ystore (YRoom._broadcast_updates); load once started.
            await self.start_room(room)
            await ystore.started.wait()
            try:
                await ystore.apply_updates(room.ydoc)
            except YDocNotFound:
                pass
            room.ready = True
        room = self.rooms[name]
        await self.start_room(room)
        # A joiner must not write before the room observes its doc: such updates would be
        # neither stored nor relayed (a race of this wiring, not one of the defects under test).
        await room.ydoc_observed.wait()
        return room


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int)
    parser.add_argument("db_path")
    parser.add_argument("--no-auto-clean-rooms", dest="auto_clean_rooms", action="store_false")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    websocket_server = StoredRoomsServer(
        args.db_path, rooms_ready=True, auto_clean_rooms=args.auto_clean_rooms
    )
    # Create the database before serving: two rooms' first stores would race to create the
    # schema otherwise (another pycrdt.store sharp edge, not one of the defects under test).
    async with websocket_server.store_class(path="", log=websocket_server.log) as ystore:
        assert ystore.db_initialized is not None
        await ystore.db_initialized.wait()
    app = ASGIServer(websocket_server)
    async with websocket_server:
        config = uvicorn.Config(app, host="127.0.0.1", port=args.port, log_level="info")
        await uvicorn.Server(config).serve()


if __name__ == "__main__":
    asyncio.run(main())
