"""y-websocket frames tests send, built with collab's own encoders (collab.wire).

Updates and "saved" requests need no helper here: ``framing.sync_update(update)`` and
``framing.saved(counter)`` are the frames. Awareness needs one step more, JSON states to bytes;
chat requests (101) JSON to a lib0 string, and their replies (102) the way back.
"""

from __future__ import annotations

import json
from typing import Any

from collab.wire import (
    AwarenessEntry,
    Limits,
    encode_awareness,
    framing,
    read_varuint,
    scan_awareness,
)


def awareness_frame(*entries: tuple[int, int, object]) -> bytes:
    """One awareness frame of ``(client, clock, state)`` entries.

    A state is a JSON-able value, sent in the compact spelling y-protocols' ``JSON.stringify``
    uses; ``None`` is a removal (``null``); ``bytes`` are sent exactly as given, for the tests
    that send what no honest client would (malformed JSON, invalid UTF-8, a 1 MB state).
    """
    payload = encode_awareness(
        AwarenessEntry(client, clock, _state_bytes(state)) for client, clock, state in entries
    )
    return framing.awareness(payload)


def _state_bytes(state: object) -> bytes | None:
    if state is None or isinstance(state, bytes):
        return state
    return json.dumps(state, separators=(",", ":")).encode()


def chat_request(request: object) -> bytes:
    """A chat request (type 101) carrying ``request`` as JSON; ``bytes`` are sent as given."""
    body = request if isinstance(request, bytes) else json.dumps(request).encode()
    return framing.chat_request(body)


def chat_replies(frames: list[bytes]) -> list[dict[str, Any]]:
    """The chat replies (type 102) among ``frames``, decoded with lib0's reader."""
    found: list[dict[str, Any]] = []
    for frame in frames:
        kind, pos = read_varuint(frame, 0)
        if kind == framing.MSG_CHAT_REPLY:
            length, pos = read_varuint(frame, pos)
            assert length == len(frame) - pos, "a reply is exactly one varString"
            found.append(json.loads(frame[pos:].decode("utf-8")))
    return found


def awareness_states(frame: bytes) -> list[tuple[int, int, Any]]:
    """The ``(client, clock, state)`` entries of an awareness frame the server sent (a state is
    the parsed JSON object, or None for a removal)."""
    message = framing.decode_message(frame)
    assert isinstance(message, framing.Awareness), frame[:20]
    return [
        (e.client, e.clock, None if e.state is None else json.loads(e.state))
        for e in scan_awareness(message.payload, Limits())
    ]
