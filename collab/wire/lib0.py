"""lib0 v1 primitives, bounded and sans-IO: varints, strings, Any values (YJS-WIRE.md §1.1, §1.5).

Every other scanner of ``collab.wire`` reads through these, so the format's hard rules live here
once:

- varints are at most 8 bytes and at most 2**53-1, in their minimal form: lib0 yields NaN or
  imprecise values beyond, yrs folds bits of u32 fields (§1.1), and a 400 KB run of ``0xff`` is
  refused after 8 bytes, not after a quadratic walk;
- strings are strict UTF-8 and never longer than the bytes left;
- Any values are walked with an explicit stack, never by recursion, so a 20,000-level input
  costs a few bytes of Python state and is refused at ``max_any_depth``.

Errors: ``MalformedInput(ValueError)`` for any refusal, ``UnresolvedReference`` (a
``MalformedInput``) for references :class:`collab.wire.index.DocIndex` cannot accept.
``.reason`` is short text without payload bytes, safe to log and to send as a close reason.
"""

from __future__ import annotations

import math
import struct

from collab.wire.caps import Limits

__all__ = [
    "MAX_CLOCK",
    "MAX_SAFE_INT",
    "MalformedInput",
    "UnresolvedReference",
    "encode_varuint",
    "read_str",
    "read_varuint",
    "scan_any",
    "skip_varint",
    "write_varuint",
]

MAX_SAFE_INT = 2**53 - 1
"""Client IDs and awareness fields: yrs aliases IDs >= 2**53 (§1.4), lib0 loses precision."""
MAX_CLOCK = 2**31 - 1
"""Clocks, lengths and clock+len: yrs keeps u32 and casts to i32; >= 2**32 panics (§2)."""


class MalformedInput(ValueError):
    """Raised for any input outside the accepted grammar; .reason is a short human text."""

    reason: str

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class UnresolvedReference(MalformedInput):
    """A reference DocIndex refuses outright (see collab.wire.index for what is counted)."""


# --- varints (§1.1) -------------------------------------------------------------------------


def read_varuint(data: bytes | memoryview, pos: int) -> tuple[int, int]:
    """Read a lib0 varuint at ``pos``; return ``(value, new_pos)``.

    At most 8 bytes and at most 2**53-1 (§1.1): lib0 yields NaN or imprecise values beyond,
    yrs folds bits of u32 fields. Non-minimal forms (a trailing ``0x00`` group) are refused:
    no encoder emits them and they are a second spelling of the same value.
    """
    try:
        b = data[pos]
    except IndexError:
        raise MalformedInput("truncated varint") from None
    if b < 0x80:  # most varints: one byte, no more work
        return b, pos + 1
    value = b & 0x7F
    shift = 7
    # Iterating a slice costs fewer bytecodes per byte than indexing (client ids take 5).
    for b in data[pos + 1 : pos + 8]:
        value |= (b & 0x7F) << shift
        if b < 0x80:
            if b == 0:
                raise MalformedInput("non-minimal varint")
            if value > MAX_SAFE_INT:
                raise MalformedInput("varint above 2**53-1")
            return value, pos + 1 + shift // 7
        shift += 7
    if len(data) - pos < 8:
        raise MalformedInput("truncated varint")
    raise MalformedInput("varint longer than 8 bytes")


def skip_varint(data: bytes, pos: int) -> int:
    """Skip a lib0 signed varint (Any tag 125, §1.1): <= 8 bytes, |value| <= 2**53-1."""
    end = len(data)
    if pos >= end:
        raise MalformedInput("truncated varint")
    b = data[pos]
    pos += 1
    value = b & 0x3F
    if b < 0x80:
        return pos
    shift = 6
    start = pos - 1
    while pos < end and pos - start < 8:
        b = data[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            if b == 0:
                raise MalformedInput("non-minimal varint")
            if value > MAX_SAFE_INT:
                raise MalformedInput("varint above 2**53-1")
            return pos
        shift += 7
    if pos - start < 8:
        raise MalformedInput("truncated varint")
    raise MalformedInput("varint longer than 8 bytes")


def write_varuint(out: bytearray, value: int) -> None:
    """Append ``value`` as a lib0 varuint; ValueError outside 0..2**53-1 (no reader takes it)."""
    if not 0 <= value <= MAX_SAFE_INT:
        raise ValueError("varuint out of range")
    while value > 0x7F:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    out.append(value)


def encode_varuint(value: int) -> bytes:
    """``value`` as a lib0 varuint (see :func:`write_varuint`)."""
    out = bytearray()
    write_varuint(out, value)
    return bytes(out)


# --- strings (§1.1) -------------------------------------------------------------------------


def read_str(data: bytes, pos: int, cap: int, what: str) -> tuple[str, int]:
    """A lib0 ``str``: byte length (<= cap and <= remaining), then strict UTF-8 (§1.1)."""
    n, pos = read_varuint(data, pos)
    if n > cap:
        raise MalformedInput(f"{what} too long")
    end = pos + n
    if end > len(data):
        raise MalformedInput(f"truncated {what}")
    try:
        return data[pos:end].decode("utf-8"), end
    except UnicodeDecodeError:
        raise MalformedInput(f"invalid UTF-8 in {what}") from None


# --- Any (§1.5) -----------------------------------------------------------------------------

_F32 = struct.Struct(">f")
_F64 = struct.Struct(">d")


# long: the single iterative loop over every Any value; a call per value costs float-heavy data
def scan_any(data: bytes, pos: int, count: int, limits: Limits, budget: int) -> tuple[int, int]:
    """Walk ``count`` Any values with an explicit stack; return ``(pos, budget left)``.

    Depth counts open containers (``[[1]]`` is 2) and is refused above ``max_any_depth``
    *before* descending (§2 Any depth). Container counts are bounded by bytes left: an array
    element needs >= 1 byte, a map entry >= 2 (§2 "Any array / map count").

    One loop over every value, tags tested most frequent first and the short-string case
    inlined: this runs once per Any node of every inbound update, so it stays one function
    (splitting it would add a call per value to the densest input, YJS-WIRE §2).
    """
    end = len(data)
    max_depth = limits.max_any_depth
    max_key = limits.max_key_bytes
    counts = [count]
    is_map = [False]
    while True:
        if counts[-1] == 0:
            counts.pop()
            is_map.pop()
            if not counts:
                return pos, budget
            continue
        counts[-1] -= 1
        if is_map[-1]:
            key, pos = read_str(data, pos, max_key, "map key")
            if key == "__proto__":
                raise MalformedInput('"__proto__" key')
        if pos >= end:
            raise MalformedInput("truncated Any")
        budget -= 1
        if budget < 0:
            raise MalformedInput("too many elements")
        tag = data[pos]
        pos += 1
        if tag == 119:  # string
            n = data[pos] if pos < end else 0x80
            if n < 0x80 and pos + 1 + n <= end:
                try:
                    data[pos + 1 : pos + 1 + n].decode("utf-8")
                except UnicodeDecodeError:
                    raise MalformedInput("invalid UTF-8 in Any string") from None
                pos += 1 + n
            else:
                _, pos = read_str(data, pos, end, "Any string")
        elif tag == 127 or tag == 126 or tag == 120 or tag == 121:  # undefined null true false
            pass
        elif tag == 125:
            pos = skip_varint(data, pos)
        elif tag == 124 or tag == 123:
            width = 4 if tag == 124 else 8
            if pos + width > end:
                raise MalformedInput("truncated float")
            if not limits.allow_nonfinite_floats:
                value = (_F32 if tag == 124 else _F64).unpack_from(data, pos)[0]
                if not math.isfinite(value):
                    raise MalformedInput("non-finite float in Any")
            pos += width
        elif tag == 117 or tag == 118:  # array / object
            n, pos = read_varuint(data, pos)
            if n > (end - pos) // (1 if tag == 117 else 2):
                raise MalformedInput("Any container count exceeds input")
            if len(counts) > max_depth:
                raise MalformedInput("Any nested too deep")
            counts.append(n)
            is_map.append(tag == 118)
        elif tag == 122:
            if not limits.allow_bigint:
                raise MalformedInput("bigint in Any")
            if pos + 8 > end:
                raise MalformedInput("truncated bigint")
            pos += 8
        elif tag == 116:  # Uint8Array
            n, pos = read_varuint(data, pos)
            if n > limits.max_binary_bytes or pos + n > end:
                raise MalformedInput("Any binary too long")
            pos += n
        else:
            raise MalformedInput("unknown Any tag")
