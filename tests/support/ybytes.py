"""Byte builders for crafted Yjs updates in tests (YJS-WIRE §1).

Crafted by hand so a test says exactly which bytes it sends, malformed ones included.
"""

from __future__ import annotations

from collab.wire import MAX_SAFE_INT, encode_varuint


def vu(n: int) -> bytes:
    """``n`` as a lib0 varuint: collab's own encoder, except past 2**53-1, which that encoder
    refuses to write and tests send to check the reader refuses it too."""
    if n > MAX_SAFE_INT:
        return bytes([0x80 | (n & 0x7F)]) + vu(n >> 7)
    return encode_varuint(n)


def s(text: str | bytes) -> bytes:
    raw = text.encode() if isinstance(text, str) else text
    return vu(len(raw)) + raw


def update(*sections: tuple[int, int, list[bytes]], ds: bytes = b"\x00") -> bytes:
    """sections: (client, start clock, [struct bytes])."""
    out = vu(len(sections))
    for client, clock, structs in sections:
        out += vu(len(structs)) + vu(client) + vu(clock) + b"".join(structs)
    return out + ds


def root_item(root: str, content: bytes, ref: int, sub: str | None = None) -> bytes:
    info = ref | (0x20 if sub is not None else 0)
    return bytes([info]) + b"\x01" + s(root) + (s(sub) if sub is not None else b"") + content


def id_parent_item(pc: int, pk: int, content: bytes, ref: int, sub: str | None = None) -> bytes:
    info = ref | (0x20 if sub is not None else 0)
    return (
        bytes([info]) + b"\x00" + vu(pc) + vu(pk) + (s(sub) if sub is not None else b"") + content
    )


def origin_item(
    content: bytes,
    ref: int,
    origin: tuple[int, int] | None = None,
    right: tuple[int, int] | None = None,
) -> bytes:
    info = ref | (0x80 if origin else 0) | (0x40 if right else 0)
    out = bytes([info])
    if origin:
        out += vu(origin[0]) + vu(origin[1])
    if right:
        out += vu(right[0]) + vu(right[1])
    return out + content


def any_item(*values: bytes) -> bytes:
    """Content of a ref-8 item."""
    return vu(len(values)) + b"".join(values)


MAP_TYPE = b"\x01"  # ContentType payload: typeRef 1 (YMap)
