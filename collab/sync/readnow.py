"""The scope key and the signal of inline reads (``collab.sync.inline``), light enough for the
CLI's uvicorn protocol (``collab.cli.wsprotocol``) to import when the CLI loads."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

# The ASGI scope key of ``register(take) -> wake`` (collab.sync.inline), offered by collab's
# uvicorn protocol and wrapped by the metrics middleware, which counts the frames taken.
READ_NOW = "collab.read_now"

# The message ``wake`` queues: the read loop knows it by identity; it carries no data.
WAKE: dict[str, Any] = {"type": "websocket.receive"}

Take = Callable[[bytes], bool]
Register = Callable[[Take], Callable[[], None]]
