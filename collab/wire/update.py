"""Bounded, sans-IO scanner for Yjs update v1 and state vectors (YJS-WIRE.md §1.3-§1.6, §2).

Every byte a client sends passes through here before pycrdt/yrs sees it (DESIGN.md, Wire
protocol). The scanner does not build a document; it walks the byte grammar once, checks every
rule of YJS-WIRE §1.9 and every cap of §2, and returns just enough structure (item IDs, origins,
parents, delete ranges) for :class:`collab.wire.index.DocIndex` to bound shared-type nesting
across updates (§4).

Design rules, each one closing a hazard class listed at the top of YJS-WIRE:

- No recursion anywhere: Any values and JSON depth are walked with explicit stacks
  (``collab.wire.lib0``, ``collab.wire.strictjson``).
- O(bytes): every count is checked against the bytes remaining (``count <= remaining // min
  element size``) before anything loops on it, and varints are at most 8 bytes.
- Accept only what Yjs and yrs read the same way (§1.9), so peers cannot be made to diverge.

Refusals raise ``MalformedInput`` with a short ``.reason``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypeAlias

from collab.wire.caps import Limits
from collab.wire.lib0 import MAX_CLOCK, MalformedInput, read_str, read_varuint, scan_any
from collab.wire.strictjson import read_json

__all__ = [
    "Parent",
    "Range",
    "StructRef",
    "UpdateInfo",
    "scan_state_vector",
    "scan_update",
]

Parent: TypeAlias = str | tuple[int, int] | None
"""Explicit parent of an item: a root type name, the ID of a ContentType item, or None when
the parent is inherited from the origin / right origin (§1.4)."""

Range: TypeAlias = tuple[int, int, int]  # (client, clock, length)


@dataclass(slots=True)
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


@dataclass(slots=True)
class UpdateInfo:
    """What :func:`scan_update` found; ranges are ``(client, clock, len)``.

    Not frozen (nor is :class:`StructRef`): these are built for every inbound update, and a
    frozen dataclass pays an ``object.__setattr__`` call per field. Nothing changes them.
    """

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


_BELOW_F0 = bytes(range(0xF0))
_TYPE_REFS = frozenset((0, 1, 2, 3, 4, 6))  # §1.9: 5 (XmlHook), 7, 9, 15 are read differently


def _read_id(data: bytes, pos: int) -> tuple[tuple[int, int], int]:
    client, pos = read_varuint(data, pos)
    clock, pos = read_varuint(data, pos)
    if clock > MAX_CLOCK:
        raise MalformedInput("clock above 2**31-1")
    return (client, clock), pos


def scan_update(update: bytes, limits: Limits, *, max_elements: int | None = None) -> UpdateInfo:
    """Scan a Yjs update v1 (§1.4-§1.6) and enforce §1.9 and §2; raise MalformedInput.

    ``max_elements`` replaces ``limits.max_elements``: DocIndex.from_update lifts it to scan a
    whole stored document (the cap bounds one client frame, not a document).
    """
    data = bytes(update)
    end = len(data)
    total = limits.max_elements if max_elements is None else max_elements
    n_clients, pos = read_varuint(data, 0)
    if n_clients > (end - pos) // 3:  # numStructs, client, clock: >= 3 bytes per section
        raise MalformedInput("numClients exceeds input")
    found = _Found()
    budget = total
    for _ in range(n_clients):
        n_structs, pos = read_varuint(data, pos)
        client, pos = read_varuint(data, pos)
        clock, pos = read_varuint(data, pos)
        if client in found.clients:
            raise MalformedInput("duplicate client in structs")  # §1.9: Yjs replaces, yrs appends
        if clock > MAX_CLOCK:
            raise MalformedInput("clock above 2**31-1")
        if n_structs > (end - pos) // 2:  # GC/Skip, the smallest structs, take 2 bytes
            raise MalformedInput("numStructs exceeds input")
        budget -= n_structs
        if budget < 0:
            raise MalformedInput("too many elements")
        pos, end_clock, budget = _scan_structs(
            data, pos, client, clock, n_structs, limits, budget, found
        )
        found.clients[client] = (clock, end_clock)
    deletes, pos, budget = _scan_delete_set(data, pos, budget)
    if pos != end:
        raise MalformedInput("trailing bytes after delete set")
    return UpdateInfo(
        structs=tuple(found.items),
        gc_ranges=tuple(found.gcs),
        skip_ranges=tuple(found.skips),
        deletes=deletes,
        clients=found.clients,
        elements=total - budget,
    )


class _Found:
    """What the struct sections yielded so far (filled by :func:`_scan_structs`)."""

    __slots__ = ("clients", "gcs", "items", "skips")

    def __init__(self) -> None:
        self.items: list[StructRef] = []
        self.gcs: list[Range] = []
        self.skips: list[Range] = []
        self.clients: dict[int, tuple[int, int]] = {}


# long: the per-struct loop of every inbound update; reading content through calls cost ~7%
def _scan_structs(
    data: bytes,
    pos: int,
    client: int,
    clock: int,
    n_structs: int,
    limits: Limits,
    budget: int,
    found: _Found,
) -> tuple[int, int, int]:
    """One client's ``n_structs`` structs from ``clock`` (§1.4); return (pos, clock, budget).

    The scanner's per-struct loop, kept as one function over 60 lines on purpose: it runs for
    every struct of every inbound frame and of every document load, so the struct header and
    String content, by far the most frequent, are read inline (one more call per struct cost
    ~7% of a whole-document scan, measured); every other content is :func:`_read_content`.
    """
    end = len(data)
    items = found.items
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
            (found.gcs if ref == 0 else found.skips).append((client, clock, length))
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
            parent, parent_sub, pos = _read_parent(data, pos, info, limits)
        if ref == 4:  # String: clock length in UTF-16 units (§1.4)
            n, pos = read_varuint(data, pos)
            if pos + n > end:
                raise MalformedInput("truncated string")
            raw = data[pos : pos + n]
            try:
                length = len(raw.decode("utf-8"))
            except UnicodeDecodeError:
                raise MalformedInput("invalid UTF-8 in string") from None
            pos += n
            if length != n:  # astral code points (lead byte >= 0xF0) take two units
                length += len(raw.translate(None, _BELOW_F0))
            type_ref = None
        else:
            pos, length, type_ref, budget = _read_content(data, pos, ref, limits, budget)
        if clock + length > MAX_CLOCK:
            raise MalformedInput("clock+len above 2**31-1")
        items.append(
            StructRef(client, clock, length, ref, type_ref, origin, right, parent, parent_sub)
        )
        clock += length
    return pos, clock, budget


def _read_parent(
    data: bytes, pos: int, info: int, limits: Limits
) -> tuple[Parent, str | None, int]:
    """The explicit parent of an item without origins (§1.4): root name or type ID, parentSub."""
    parent: Parent
    parent_info, pos = read_varuint(data, pos)
    if parent_info == 1:
        parent, pos = read_str(data, pos, limits.max_root_name_bytes, "root name")
    elif parent_info == 0:
        parent, pos = _read_id(data, pos)
    else:
        raise MalformedInput("parentInfo not 0/1")
    parent_sub = None
    if info & 0x20:
        parent_sub, pos = read_str(data, pos, limits.max_key_bytes, "parentSub")
    return parent, parent_sub, pos


def _read_content(
    data: bytes, pos: int, ref: int, limits: Limits, budget: int
) -> tuple[int, int, int | None, int]:
    """Content ``ref`` other than String (§1.4); return (pos, clock length, typeRef, budget)."""
    end = len(data)
    if ref == 8:
        n, pos = read_varuint(data, pos)
        if n > end - pos:
            raise MalformedInput("Any count exceeds input")
        pos, budget = scan_any(data, pos, n, limits, budget)
        return pos, n, None, budget
    if ref == 1:
        length, pos = read_varuint(data, pos)
        return pos, length, None, budget
    if ref == 7:
        if pos >= end:
            raise MalformedInput("truncated type")
        type_ref = data[pos]  # yrs reads one byte, Yjs a varuint (§1.9)
        pos += 1
        if type_ref not in _TYPE_REFS:
            raise MalformedInput(f"typeRef {type_ref} refused")
        if type_ref == 3:
            _, pos = read_str(data, pos, limits.max_name_bytes, "XML node name")
        return pos, 1, type_ref, budget
    if ref == 3:
        n, pos = read_varuint(data, pos)
        if n > limits.max_binary_bytes or pos + n > end:
            raise MalformedInput("binary too long")
        return pos + n, 1, None, budget
    if ref == 5:
        return read_json(data, pos, limits, "embed"), 1, None, budget
    # ref == 6, Format
    _, pos = read_str(data, pos, limits.max_name_bytes, "format key")
    return read_json(data, pos, limits, "format value"), 1, None, budget


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


def deleted_length(delete_set: bytes) -> int:
    """Clock units an encoded delete set (§1.6, as yrs gives a transaction's) deletes."""
    ranges, _, _ = _scan_delete_set(bytes(delete_set), 0, len(delete_set))
    return sum(length for _, _, length in ranges)


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
