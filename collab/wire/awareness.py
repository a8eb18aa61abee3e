"""Bounded scanner and encoder for y-protocols awareness payloads (YJS-WIRE.md §1.8, §2).

pycrdt-websocket relays raw awareness frames to browsers (§1.8), so collab never relays what a
client sent: it scans the payload here, checks every cap, and re-broadcasts the *canonical*
re-encoding from :func:`encode_awareness`. States must be a JSON object or ``null`` (removal).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from collab.wire.caps import Limits
from collab.wire.lib0 import MalformedInput, read_varuint, write_varuint
from collab.wire.strictjson import canonical_json, strict_json

__all__ = ["AwarenessEntry", "encode_awareness", "scan_awareness"]


@dataclass(frozen=True)
class AwarenessEntry:
    """One client's awareness state; ``state`` is canonical JSON bytes or None for removal."""

    client: int
    clock: int
    state: bytes | None


def scan_awareness(payload: bytes, limits: Limits) -> list[AwarenessEntry]:
    """Parse ``vu:n (vu:client vu:clock str:json)*n`` (§1.8) under the caps of §2.

    - n <= remaining // 5 (smallest entry: client, clock, length, ``{}``) and
      n <= ``max_awareness_entries`` (a browser sends one);
    - no client twice in one payload (which one would win is reader-dependent);
    - each state <= ``max_awareness_state_bytes``, strict JSON with depth checked before
      parsing, and a JSON object or ``null`` (an empty string, which pycrdt reads as None and
      JSON.parse refuses, is refused).
    """
    data = bytes(payload)
    end = len(data)
    n, pos = read_varuint(data, 0)
    if n > (end - pos) // 5:
        raise MalformedInput("awareness count exceeds input")
    if n > limits.max_awareness_entries:
        raise MalformedInput("too many awareness entries")
    entries: list[AwarenessEntry] = []
    seen: set[int] = set()
    for _ in range(n):
        client, pos = read_varuint(data, pos)
        clock, pos = read_varuint(data, pos)
        if client in seen:
            raise MalformedInput("duplicate awareness client")
        seen.add(client)
        length, pos = read_varuint(data, pos)
        if length > limits.max_awareness_state_bytes:
            raise MalformedInput("awareness state too large")
        if pos + length > end:
            raise MalformedInput("truncated awareness state")
        raw = data[pos : pos + length]
        pos += length
        state = _canonical(raw, limits)
        if state is not None and len(state) > limits.max_awareness_state_bytes:
            raise MalformedInput("awareness state too large")
        entries.append(AwarenessEntry(client, clock, state))
    if pos != end:
        raise MalformedInput("trailing bytes after awareness entries")
    return entries


# Canonical forms of states seen lately, by their exact bytes and the depth they were checked
# at. A client renews the same state every 15 s and each renewal is scanned again: most
# payloads are renewals or repeats. Only short states are kept (a name, a colour, a cursor),
# so the cache holds at most _CACHED x _CACHEABLE bytes of keys and as much of values (about
# half a megabyte with the objects around them).
_CACHEABLE = 256
_CACHED = 1024
_seen: dict[tuple[bytes, int], bytes | None] = {}


def _canonical(raw: bytes, limits: Limits) -> bytes | None:
    """The canonical JSON of one state (None: a removal); MalformedInput if it is not one."""
    key = (raw, limits.max_awareness_depth)
    if key in _seen:
        return _seen[key]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedInput("invalid UTF-8 in awareness state") from None
    value = strict_json(text, limits.max_awareness_depth, "awareness state")
    if value is None:
        state = None
    elif isinstance(value, dict):
        try:
            state = canonical_json(value)
        except UnicodeEncodeError:  # pragma: no cover - strict_json refuses lone surrogates
            raise MalformedInput("lone surrogate in awareness state") from None
    else:
        raise MalformedInput("awareness state is not an object or null")
    if len(raw) <= _CACHEABLE:
        if len(_seen) >= _CACHED:
            _seen.clear()
        _seen[key] = state
    return state


def encode_awareness(entries: Iterable[AwarenessEntry]) -> bytes:
    """Encode the awareness payload (§1.8) for re-broadcast; ``None`` is written as ``null``."""
    items = list(entries)
    out = bytearray()
    write_varuint(out, len(items))
    for entry in items:
        write_varuint(out, entry.client)
        write_varuint(out, entry.clock)
        state = b"null" if entry.state is None else entry.state
        write_varuint(out, len(state))
        out += state
    return bytes(out)
