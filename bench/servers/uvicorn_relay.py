"""The ceiling of a Python stack: a raw ASGI app on uvicorn forwarding every frame to the other
sockets on the same path, without parsing anything.

    python uvicorn_relay.py --port P [--deflate]
"""

from __future__ import annotations

import argparse
from typing import Any

import uvicorn

Send = Any
rooms: dict[str, set[Send]] = {}


async def app(scope: dict[str, Any], receive: Any, send: Send) -> None:
    if scope["type"] == "lifespan":
        await receive()  # lifespan.startup
        await send({"type": "lifespan.startup.complete"})
        await receive()  # lifespan.shutdown
        await send({"type": "lifespan.shutdown.complete"})
        return
    if scope["type"] != "websocket":
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b"relay"})
        return
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    peers = rooms.setdefault(scope["path"], set())
    peers.add(send)
    try:
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                break
            if message.get("bytes") is not None:
                frame = {"type": "websocket.send", "bytes": message["bytes"]}
            else:
                frame = {"type": "websocket.send", "text": message.get("text")}
            for peer in list(peers):
                if peer is not send:
                    await _send_quietly(peer, frame)
    finally:
        peers.discard(send)
        if not peers:
            rooms.pop(scope["path"], None)


async def _send_quietly(send: Send, frame: dict[str, Any]) -> None:
    try:
        await send(frame)
    except Exception:  # the peer is gone; its own receive loop cleans up
        pass


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--deflate", action="store_true")
    args = parser.parse_args()
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=args.port,
        ws_per_message_deflate=args.deflate,
        log_level="warning",
    )


if __name__ == "__main__":
    main()
