"""Bounded, sans-IO scanner for Yjs update v1 and state vectors (YJS-WIRE.md §1, §2).

Every byte a client sends passes through here before pycrdt/yrs sees it (DESIGN.md, Wire
protocol). The scanner does not build a document; it walks the byte grammar once, checks every
rule of YJS-WIRE §1.9 and every cap of §2, and returns just enough structure (item IDs, origins,
parents, delete ranges) for :class:`collab.nesting.DocIndex` to bound shared-type nesting across
updates (§4).

Design rules, each one closing a hazard class listed at the top of YJS-WIRE:

- No recursion anywhere: Any values and JSON depth are walked with explicit stacks, so a
  20,000-level input costs a few bytes of Python state and is refused at ``max_any_depth``.
- O(bytes): every count is checked against the bytes remaining (``count <= remaining // min
  element size``) before anything loops on it, and varints are at most 8 bytes, so a
  400 KB run of ``0xff`` is refused after 8 bytes, not after a quadratic walk.
- Accept only what Yjs and yrs read the same way (§1.9), so peers cannot be made to diverge.

Error tree: ``MalformedInput(ValueError)`` for any refusal, ``UnresolvedReference`` (a
``MalformedInput``) for references :class:`DocIndex` cannot accept. ``.reason`` is short text
without payload bytes, safe to log and to send as a close reason.
"""

from __future__ import annotations

import importlib
import json
import math
import re
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeAlias

__all__ = [
    "MAX_CLOCK",
    "MAX_SAFE_INT",
    "AwarenessEntry",
    "DocIndex",
    "IndexDelta",
    "Limits",
    "MalformedInput",
    "StructRef",
    "UnresolvedReference",
    "UpdateInfo",
    "encode_awareness",
    "read_varuint",
    "scan_awareness",
    "scan_state_vector",
    "scan_update",
    "strict_json",
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
    """A reference DocIndex refuses outright (see collab.nesting for what is counted instead)."""


@dataclass(frozen=True)
class Limits:
    """Caps of YJS-WIRE §2. Defaults fit Tiptap/CodeMirror/chat; rooms may tighten them."""

    max_any_depth: int = 64  # §2 "Any depth": yrs SIGSEGVs on deep Any, Yjs RangeError ~5,000
    max_type_depth: int = 64  # §4: nested-type delete/GC recursion in yrs, enforced by DocIndex
    max_json_depth: int = 32  # §2 Embed/Format: serde_json stops at 128, Python json recurses
    max_key_bytes: int = 256  # §2 parentSub and Any map keys
    max_root_name_bytes: int = 64  # §2 parentYKey: any name creates a root type
    max_roots: int = 64  # §2 per-doc root count (DocIndex)
    max_elements: int = 200_000  # §2 "Total elements": bounds pure-Python scan time per frame
    max_binary_bytes: int = 1 << 20  # §2 ContentBinary and Any Uint8Array
    max_embed_bytes: int = 64 * 1024  # §2 Embed / Format JSON text
    max_awareness_entries: int = 8  # §2 "Awareness n": a browser sends one
    max_awareness_state_bytes: int = 16 * 1024  # §2 awareness JSON is relayed raw to browsers
    max_awareness_depth: int = 16  # §2 awareness JSON depth
    # Additions (defaulted, so the agreed constructor shape still works):
    max_name_bytes: int = 64  # §2 Format key and XmlElement nodeName
    allow_bigint: bool = False  # §2 Any tag 122: JSON.stringify throws on BigInt in browsers
    allow_nonfinite_floats: bool = False  # §2 Any NaN/Inf: not representable in JSON


def read_varuint(data: bytes | memoryview, pos: int) -> tuple[int, int]:
    """Read a lib0 varuint at ``pos``; return ``(value, new_pos)``.

    At most 8 bytes and at most 2**53-1 (§1.1): lib0 yields NaN or imprecise values beyond,
    yrs folds bits of u32 fields. Non-minimal forms (a trailing ``0x00`` group) are refused:
    no encoder emits them and they are a second spelling of the same value.
    """
    end = len(data)
    if pos >= end:
        raise MalformedInput("truncated varint")
    b = data[pos]
    if b < 0x80:
        return b, pos + 1
    value = b & 0x7F
    shift = 7
    i = pos + 1
    limit = pos + 8 if pos + 8 < end else end
    while i < limit:
        b = data[i]
        i += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            if b == 0:
                raise MalformedInput("non-minimal varint")
            if value > MAX_SAFE_INT:
                raise MalformedInput("varint above 2**53-1")
            return value, i
        shift += 7
    if i - pos < 8:
        raise MalformedInput("truncated varint")
    raise MalformedInput("varint longer than 8 bytes")


def _read_varint(data: bytes, pos: int) -> int:
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


def _read_str(data: bytes, pos: int, cap: int, what: str) -> tuple[str, int]:
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


# --- strict JSON (Embed, Format, awareness) -------------------------------------------------

_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.S)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")


def _reject_constant(name: str) -> object:
    raise MalformedInput("NaN/Infinity in JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise MalformedInput("non-finite number in JSON")
    return value


def _no_proto(pairs: list[tuple[str, object]]) -> dict[str, object]:
    for key, _ in pairs:
        if key == "__proto__":
            raise MalformedInput('"__proto__" key')
    return dict(pairs)


def strict_json(text: str, max_depth: int, what: str) -> object:
    """Parse JSON that JSON.parse, serde_json and Python all read alike (§2 Embed/awareness).

    Depth is measured iteratively *before* ``json.loads`` (Python's parser recurses, §2); the
    pre-pass strips string literals, so it agrees with the parser on every bracket the parser
    reaches before it fails. NaN/Infinity, overflowing numbers, lone surrogate escapes and
    ``"__proto__"`` keys are refused.
    """
    depth = 0
    for ch in _NOT_BRACKET.sub("", _JSON_STRING.sub("", text)):
        if ch == "[" or ch == "{":
            depth += 1
            if depth > max_depth:
                raise MalformedInput(f"{what} nested too deep")
        else:
            depth -= 1
    try:
        value = json.loads(
            text,
            parse_constant=_reject_constant,
            parse_float=_finite_float,
            object_pairs_hook=_no_proto,
        )
    except MalformedInput:
        raise
    except (ValueError, RecursionError):
        raise MalformedInput(f"invalid JSON in {what}") from None
    if "\\u" in text:
        try:  # lone surrogate escapes: serde_json refuses them, JSON.parse keeps them
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise MalformedInput(f"lone surrogate in {what}") from None
    return value


def _read_json(data: bytes, pos: int, limits: Limits, what: str) -> int:
    text, pos = _read_str(data, pos, limits.max_embed_bytes, what)
    strict_json(text, limits.max_json_depth, what)
    return pos


# --- results ------------------------------------------------------------------------------

Parent: TypeAlias = str | tuple[int, int] | None
"""Explicit parent of an item: a root type name, the ID of a ContentType item, or None when
the parent is inherited from the origin / right origin (§1.4)."""


@dataclass(frozen=True, slots=True)
class StructRef:
    """One item (not GC/Skip) as DocIndex needs it (§1.4, §4)."""

    client: int
    clock: int
    length: int  # clock units; 0 for empty items, which yrs drops at decode (§1.4)
    content_ref: int  # 1..8 (2 and 9 are refused)
    type_ref: int | None  # ContentType typeRef, else None
    origin: tuple[int, int] | None
    right_origin: tuple[int, int] | None
    parent: Parent
    parent_sub: str | None

    @property
    def is_type(self) -> bool:
        return self.type_ref is not None


Range: TypeAlias = tuple[int, int, int]  # (client, clock, length)


@dataclass(frozen=True)
class UpdateInfo:
    """What :func:`scan_update` found; ranges are ``(client, clock, len)``."""

    structs: tuple[StructRef, ...]
    gc_ranges: tuple[Range, ...]
    skip_ranges: tuple[Range, ...]
    deletes: tuple[Range, ...]
    clients: Mapping[int, tuple[int, int]]  # client -> (start clock, end clock) of its section
    elements: int  # structs + Any nodes + DS ranges, as counted against max_elements

    @property
    def is_empty(self) -> bool:
        """No structs (incl. GC/Skip) and no delete ranges: the ``00 00`` update."""
        return not (self.structs or self.gc_ranges or self.skip_ranges or self.deletes)


# --- Any (§1.5) ---------------------------------------------------------------------------

_F32 = struct.Struct(">f")
_F64 = struct.Struct(">d")


def _scan_any(data: bytes, pos: int, count: int, limits: Limits, budget: int) -> tuple[int, int]:
    """Walk ``count`` Any values with an explicit stack; return ``(pos, budget left)``.

    Depth counts open containers (``[[1]]`` is 2) and is refused above ``max_any_depth``
    *before* descending (§2 Any depth). Container counts are bounded by bytes left: an array
    element needs >= 1 byte, a map entry >= 2 (§2 "Any array / map count").
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
            key, pos = _read_str(data, pos, max_key, "map key")
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
                _, pos = _read_str(data, pos, end, "Any string")
        elif tag == 127 or tag == 126 or tag == 120 or tag == 121:  # undefined null true false
            pass
        elif tag == 125:
            pos = _read_varint(data, pos)
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


# --- update v1 (§1.4-§1.6) ----------------------------------------------------------------

_BELOW_F0 = bytes(range(0xF0))
_TYPE_REFS = frozenset((0, 1, 2, 3, 4, 6))  # §1.9: 5 (XmlHook), 7, 9, 15 are read differently


def _read_id(data: bytes, pos: int) -> tuple[tuple[int, int], int]:
    client, pos = read_varuint(data, pos)
    clock, pos = read_varuint(data, pos)
    if clock > MAX_CLOCK:
        raise MalformedInput("clock above 2**31-1")
    return (client, clock), pos


def scan_update(update: bytes, limits: Limits) -> UpdateInfo:
    """Scan a Yjs update v1 (§1.4-§1.6) and enforce §1.9 and §2; raise MalformedInput."""
    return _scan_update(bytes(update), limits, limits.max_elements)


def _scan_update(data: bytes, limits: Limits, max_elements: int) -> UpdateInfo:
    """``max_elements`` is separate so DocIndex.from_update can scan a whole document."""
    end = len(data)
    budget = max_elements
    n_clients, pos = read_varuint(data, 0)
    if n_clients > (end - pos) // 3:  # numStructs, client, clock: >= 3 bytes per section
        raise MalformedInput("numClients exceeds input")
    items: list[StructRef] = []
    gcs: list[Range] = []
    skips: list[Range] = []
    clients: dict[int, tuple[int, int]] = {}
    for _ in range(n_clients):
        n_structs, pos = read_varuint(data, pos)
        client, pos = read_varuint(data, pos)
        clock, pos = read_varuint(data, pos)
        if client in clients:
            raise MalformedInput("duplicate client in structs")  # §1.9: Yjs replaces, yrs appends
        if clock > MAX_CLOCK:
            raise MalformedInput("clock above 2**31-1")
        if n_structs > (end - pos) // 2:  # GC/Skip, the smallest structs, take 2 bytes
            raise MalformedInput("numStructs exceeds input")
        budget -= n_structs
        if budget < 0:
            raise MalformedInput("too many elements")
        start = clock
        for _ in range(n_structs):
            if pos >= end:
                raise MalformedInput("truncated struct")
            info = data[pos]
            pos += 1
            ref = info & 0x1F
            if ref == 0 or ref == 10:
                if info != ref:  # §1.9: yrs only reads info == 0x00 / 0x0A as GC / Skip
                    raise MalformedInput("GC/Skip with flag bits")
                length, pos = read_varuint(data, pos)
                if length == 0:  # §2: zero-length GC/Skip underflow clock_range in yrs
                    raise MalformedInput("zero-length GC/Skip")
                if clock + length > MAX_CLOCK:
                    raise MalformedInput("clock+len above 2**31-1")
                (gcs if ref == 0 else skips).append((client, clock, length))
                clock += length
                continue
            if ref > 10 or ref == 2 or ref == 9:
                # bit 0x10 / refs 11-15: Yjs TypeError, yrs masks to 4 bits (§1.9);
                # ref 2: yrs off-by-one; ref 9: subdocuments are not supported (§2).
                raise MalformedInput(f"content ref {ref} refused")
            origin = right = None
            parent: Parent = None
            parent_sub = None
            if info & 0x80:
                origin, pos = _read_id(data, pos)
            if info & 0x40:
                right, pos = _read_id(data, pos)
            if not info & 0xC0:
                parent_info, pos = read_varuint(data, pos)
                if parent_info == 1:
                    parent, pos = _read_str(data, pos, limits.max_root_name_bytes, "root name")
                elif parent_info == 0:
                    parent, pos = _read_id(data, pos)
                else:
                    raise MalformedInput("parentInfo not 0/1")
                if info & 0x20:
                    parent_sub, pos = _read_str(data, pos, limits.max_key_bytes, "parentSub")
            type_ref = None
            if ref == 4:  # String: clock length in UTF-16 units (§1.4)
                n, pos = read_varuint(data, pos)
                if pos + n > end:
                    raise MalformedInput("truncated string")
                raw = data[pos : pos + n]
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError:
                    raise MalformedInput("invalid UTF-8 in string") from None
                pos += n
                # astral code points (4-byte sequences, lead byte >= 0xF0) take two units
                length = len(text)
                if length != n:
                    length += len(raw.translate(None, _BELOW_F0))
            elif ref == 8:
                n, pos = read_varuint(data, pos)
                if n > end - pos:
                    raise MalformedInput("Any count exceeds input")
                pos, budget = _scan_any(data, pos, n, limits, budget)
                length = n
            elif ref == 1:
                length, pos = read_varuint(data, pos)
            elif ref == 7:
                if pos >= end:
                    raise MalformedInput("truncated type")
                type_ref = data[pos]  # yrs reads one byte, Yjs a varuint (§1.9)
                pos += 1
                if type_ref not in _TYPE_REFS:
                    raise MalformedInput(f"typeRef {type_ref} refused")
                if type_ref == 3:
                    _, pos = _read_str(data, pos, limits.max_name_bytes, "XML node name")
                length = 1
            elif ref == 3:
                n, pos = read_varuint(data, pos)
                if n > limits.max_binary_bytes or pos + n > end:
                    raise MalformedInput("binary too long")
                pos += n
                length = 1
            elif ref == 5:
                pos = _read_json(data, pos, limits, "embed")
                length = 1
            else:  # ref == 6, Format
                _, pos = _read_str(data, pos, limits.max_name_bytes, "format key")
                pos = _read_json(data, pos, limits, "format value")
                length = 1
            if clock + length > MAX_CLOCK:
                raise MalformedInput("clock+len above 2**31-1")
            items.append(
                StructRef(client, clock, length, ref, type_ref, origin, right, parent, parent_sub)
            )
            clock += length
        clients[client] = (start, clock)
    deletes, pos, budget = _scan_delete_set(data, pos, budget)
    if pos != end:
        raise MalformedInput("trailing bytes after delete set")
    return UpdateInfo(
        structs=tuple(items),
        gc_ranges=tuple(gcs),
        skip_ranges=tuple(skips),
        deletes=deletes,
        clients=clients,
        elements=max_elements - budget,
    )


def _scan_delete_set(data: bytes, pos: int, budget: int) -> tuple[tuple[Range, ...], int, int]:
    """§1.6; duplicate clients refused because yrs lets the last section win (§1.9)."""
    end = len(data)
    n_clients, pos = read_varuint(data, pos)
    if n_clients > (end - pos) // 2:
        raise MalformedInput("delete set client count exceeds input")
    seen: set[int] = set()
    ranges: list[Range] = []
    for _ in range(n_clients):
        client, pos = read_varuint(data, pos)
        if client in seen:
            raise MalformedInput("duplicate client in delete set")
        seen.add(client)
        n_ranges, pos = read_varuint(data, pos)
        if n_ranges > (end - pos) // 2:
            raise MalformedInput("delete range count exceeds input")
        budget -= n_ranges
        if budget < 0:
            raise MalformedInput("too many elements")
        for _ in range(n_ranges):
            clock, pos = read_varuint(data, pos)
            length, pos = read_varuint(data, pos)
            if length == 0:
                raise MalformedInput("zero-length delete range")
            if clock + length > MAX_CLOCK:
                raise MalformedInput("clock+len above 2**31-1")
            ranges.append((client, clock, length))
    return tuple(ranges), pos, budget


def scan_state_vector(sv: bytes, limits: Limits) -> dict[int, int]:
    """A SyncStep1 state vector (§1.3): exact length, no duplicates, clocks <= 2**31-1.

    The count is bounded by bytes (2 per entry) and by ``max_elements``: yrs reserves memory
    for it before reading, and each SyncStep1 costs a full-document encode (§2).
    """
    data = bytes(sv)
    end = len(data)
    n, pos = read_varuint(data, 0)
    if n > (end - pos) // 2 or n > limits.max_elements:
        raise MalformedInput("state vector count exceeds input")
    result: dict[int, int] = {}
    for _ in range(n):
        client, pos = read_varuint(data, pos)
        clock, pos = read_varuint(data, pos)
        if clock > MAX_CLOCK:
            raise MalformedInput("clock above 2**31-1")
        if client in result:
            raise MalformedInput("duplicate client in state vector")
        result[client] = clock
    if pos != end:
        raise MalformedInput("trailing bytes after state vector")
    return result


# Re-exports so callers can import the whole wire API from one module. Lazy (PEP 562) because
# those modules import the primitives above.
if TYPE_CHECKING:
    from collab.awareness_wire import AwarenessEntry, encode_awareness, scan_awareness
    from collab.nesting import DocIndex, IndexDelta

_LAZY = {
    "AwarenessEntry": "collab.awareness_wire",
    "encode_awareness": "collab.awareness_wire",
    "scan_awareness": "collab.awareness_wire",
    "DocIndex": "collab.nesting",
    "IndexDelta": "collab.nesting",
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
