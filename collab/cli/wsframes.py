"""Where a client's WebSocket frames start, from the bytes websockets' parser is handed
(``collab.cli.wsprotocol`` takes frames inline only there; RFC 6455 §5.2)."""

from __future__ import annotations


class FrameBounds:
    """Where websockets' parser is in a client's frames, from the bytes handed to it: whether
    the next byte it gets opens a frame (``at_start``).

    Its own state cannot say so: its reader drops each field of a frame's header (head, length,
    mask) as soon as it holds it, so a read that ends right after one leaves nothing buffered
    mid-frame, and the next read (the mask, or the masked payload) may look like a frame of its
    own. Counting the frames' lengths here says it exactly. A header cut by a read is kept
    until it is whole (at most 14 bytes); what a header says is not checked here (websockets
    refuses a bad one, and then nothing is taken any more).
    """

    __slots__ = ("_head", "_left")

    def __init__(self) -> None:
        self._head = b""  # a header's first bytes, cut off by the read
        self._left = 0  # payload bytes of the current frame still to come

    @property
    def at_start(self) -> bool:
        return not self._left and not self._head

    def feed(self, data: bytes) -> None:
        pos, n = 0, len(data)
        while pos < n:
            if self._left:
                step = min(self._left, n - pos)
                self._left -= step
                pos += step
                continue
            held = len(self._head)
            head = self._head + data[pos : pos + 14 - held]
            size = _header_size(head)
            if size is None or len(head) < size:
                self._head = head  # the rest of ``data`` (shorter than the header) is in it
                return
            self._head = b""
            pos += size - held
            self._left = _payload_size(head)


def _header_size(head: bytes) -> int | None:
    """Bytes of the frame header ``head`` opens (RFC 6455 §5.2); None before its second byte."""
    if len(head) < 2:
        return None
    length = head[1] & 0x7F
    return 2 + (2 if length == 126 else 8 if length == 127 else 0) + (4 if head[1] & 0x80 else 0)


def _payload_size(head: bytes) -> int:
    length = head[1] & 0x7F
    if length == 126:
        return int.from_bytes(head[2:4], "big")
    if length == 127:
        return int.from_bytes(head[2:10], "big")
    return length
