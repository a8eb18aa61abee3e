"""What a loaded Doc already holds, for deciding whether an update adds anything.

A read-only peer's update is dropped silently when it adds nothing: an echo of what the server
sent (pycrdt's Provider echoes every remote update back), or the empty SyncStep2 every
y-websocket client sends. It adds nothing when every struct lies below the Doc's state vector
and every deleted range is already deleted (or garbage-collected) in the Doc. Both are read
from the Doc's own encoding through the bounded scanner, and cached until the Doc changes.
"""

from __future__ import annotations

import bisect
import dataclasses
from functools import lru_cache
from typing import Any

from pycrdt import Doc

from collab.wire import Limits, UpdateInfo, scan_state_vector, scan_update

Ranges = list[tuple[int, int]]  # sorted, merged [start, end) clock ranges


def merged(ranges: Ranges) -> Ranges:
    out: Ranges = []
    for a, b in sorted(ranges):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def covered(ranges: Ranges, start: int, end: int) -> bool:
    """Whether merged, sorted [a, b) ranges cover [start, end)."""
    i = bisect.bisect_right(ranges, (start, 1 << 62)) - 1
    return i >= 0 and ranges[i][0] <= start and end <= ranges[i][1]


@lru_cache(maxsize=16)
def _trusted(limits: Limits) -> Limits:
    """The server's own encoding is trusted input: no element budget, any Any value (one
    shared value per server's caps, not a copy per loaded doc)."""
    return dataclasses.replace(
        limits, max_elements=1 << 40, allow_bigint=True, allow_nonfinite_floats=True
    )


class KnownState:
    """The state vector and deleted ranges of one Doc, rebuilt when its version changes."""

    def __init__(self, limits: Limits) -> None:
        self.limits = _trusted(limits)
        self._version: int | None = None
        self._state_vector: dict[int, int] = {}
        self._deleted: dict[int, Ranges] = {}

    def _refresh(self, doc: Doc[Any], version: int) -> None:
        if self._version == version:
            return
        full = scan_update(doc.get_update(), self.limits)
        deleted: dict[int, Ranges] = {}
        for client, clock, length in (*full.deletes, *full.gc_ranges):
            deleted.setdefault(client, []).append((clock, clock + length))
        self._state_vector = scan_state_vector(doc.get_state(), self.limits)
        self._deleted = {client: merged(ranges) for client, ranges in deleted.items()}
        self._version = version

    def adds_nothing(self, doc: Doc[Any], version: int, info: UpdateInfo) -> bool:
        """Whether applying ``info``'s update to ``doc`` (at ``version``) would change it."""
        self._refresh(doc, version)
        for client, (_, end) in info.clients.items():
            if end > self._state_vector.get(client, 0):
                return False
        return all(
            covered(self._deleted.get(client, []), clock, clock + length)
            for client, clock, length in info.deletes
        )
