"""The few y-websocket frames the client reads and writes itself (lib0 varints and strings).

Sync messages go through pycrdt's own helpers; this is the rest: awareness (1), the auth
message (2: permission denied), collab's "saved" marker (100). The server is trusted to frame
correctly; a frame that does not parse is skipped, never fatal.
"""

from __future__ import annotations

SYNC = 0
AWARENESS = 1
AUTH = 2
SAVED = 100


def varuint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    out.append(value)
    return bytes(out)


def read_varuint(data: bytes, pos: int) -> tuple[int, int]:
    """(value, next position); ValueError when truncated or past 2^53."""
    value = shift = 0
    while True:
        if pos >= len(data) or shift > 49:
            raise ValueError("bad varuint")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, pos


def read_bytes(data: bytes, pos: int) -> tuple[bytes, int]:
    length, pos = read_varuint(data, pos)
    if pos + length > len(data):
        raise ValueError("truncated")
    return data[pos : pos + length], pos + length


def saved_frame(counter: int) -> bytes:
    return varuint(SAVED) + varuint(counter)


def awareness_frame(update: bytes) -> bytes:
    return varuint(AWARENESS) + varuint(len(update)) + update
