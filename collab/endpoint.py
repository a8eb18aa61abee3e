"""``/ws/{room}/{doc}``: authenticate -> authorize -> join -> read loop -> leave.

The route is ``/ws/{rest:path}`` so a malformed path is still accepted and closed with 4400
(y-websocket >= 3.1 stops retrying on 44xx) instead of falling through to Starlette's 403.
"""

from __future__ import annotations

import asyncio
import logging

from starlette.websockets import WebSocket

from collab.errors import BadName, CollabError, UnsupportedData, close_code_for
from collab.names import is_reserved_doc, parse_doc_path
from collab.peer import Peer
from collab.rooms import RoomRegistry
from collab.settings import Settings

log = logging.getLogger("collab.endpoint")


async def websocket_endpoint(websocket: WebSocket) -> None:
    settings: Settings = websocket.app.state.settings
    registry: RoomRegistry = websocket.app.state.registry
    await websocket.accept()
    key = parse_doc_path(websocket.path_params.get("rest", ""))
    if key is None:
        await websocket.close(BadName.close_code, BadName.reason)
        return
    peer = Peer(
        websocket,
        max_queue_bytes=settings.outbound_queue_bytes,
        send_timeout=settings.send_timeout,
        readonly=is_reserved_doc(key.doc),
        opted_in=websocket.query_params.get("collab") == "1",
    )
    try:
        room = await registry.acquire(key)
    except CollabError as exc:
        await websocket.close(*close_code_for(exc))
        return
    sender = asyncio.get_running_loop().create_task(peer.run_sender())
    try:
        await room.join(peer)
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                break
            if peer.closing:
                continue  # closing: discard until the close handshake ends
            data = message.get("bytes")
            if data is None:
                raise UnsupportedData()
            await room.handle(peer, data)
    except CollabError as exc:
        code, reason = close_code_for(exc)
        log.info("closing peer %s on %s: %s %s", peer.id, key, code, reason)
        peer.close(code, reason)
    except Exception:
        log.exception("peer %s on %s failed", peer.id, key)
        peer.close(1011, "internal error")
    finally:
        room.leave(peer)
        registry.release(room)
        peer.close(1006)  # no-op if a close was already asked for; else the client is gone
        await sender
