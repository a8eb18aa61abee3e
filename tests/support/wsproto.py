"""collab's uvicorn WebSocket protocol (collab.cli.wsprotocol) in process, on a recording
transport: what tests/cli's protocol tests share."""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.config import Config
from uvicorn.server import ServerState

from collab.cli.wsprotocol import write_now_protocol

UPGRADE = (
    b"GET /ws/r/d HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
)
DEFLATE = b"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"


class FakeTransport:
    """Records what is written. ``close`` marks it closing unless ``lazy`` (then it is
    closing only once a test says so: a close frame is not a closed transport)."""

    def __init__(self, lazy: bool = False) -> None:
        self.written: list[bytes] = []
        self.closing = False
        self.lazy = lazy
        self.reading = True

    def write(self, data: bytes) -> None:
        self.written.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        if not self.lazy:
            self.closing = True

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default


async def _idle_app(scope: Any, receive: Any, send: Any) -> None:  # the tests play the app
    await asyncio.Event().wait()


def make_protocol(deflate: bool = False, *, app: Any = _idle_app, **settings: Any) -> Any:
    """A protocol instance as uvicorn makes one per connection (no transport yet)."""
    config = Config(app=app, ws=write_now_protocol(), ws_per_message_deflate=deflate, **settings)
    config.load()
    factory: Any = config.ws_protocol_class
    return factory(config, ServerState(), {}, asyncio.get_running_loop())
