"""Which clock ranges of a document are deleted: GC'd, Deleted content, or named by a delete set.

Why DocIndex needs it (YJS-WIRE.md §1.4, §4 route 2): an item may name its parent by ID. yrs
accepts that ID only if it is a shared type or a *deleted* item (its error says "block parent
must be deleted or shared ref type"); any other live item is ``InvalidParent``, the update is
refused and the room has to rebuild its Doc. A deleted parent is legitimate: an offline client
keeps inserting into a Y.Map that someone else deleted meanwhile, and the server may have
collected it. So telling "deleted" from "live content" is what lets the index refuse the bad
updates before yrs sees them without refusing the offline client.

Kept per client as sorted, disjoint, merged ``[start, end)`` ranges in two ``array('q')``: 16
bytes a range, and ranges merge, so a run of deletions costs one. This is the same information
as yrs' own delete set, which grows the same way (with deletion sessions, not characters).
Lookups are a bisect; additions a bisect and a slice assignment.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Iterable

from collab.wire.update import Range

__all__ = ["Tombstones"]


class Tombstones:
    """Per client, the deleted clock ranges (merged); see the module doc."""

    __slots__ = ("_ends", "_starts")

    def __init__(self) -> None:
        self._starts: dict[int, array[int]] = {}
        self._ends: dict[int, array[int]] = {}

    @classmethod
    def from_ranges(cls, ranges: Iterable[Range]) -> Tombstones:
        """Built in one pass from any number of ranges (sorted and merged once)."""
        by_client: dict[int, list[tuple[int, int]]] = {}
        for client, clock, length in ranges:
            by_client.setdefault(client, []).append((clock, clock + length))
        built = cls()
        for client, spans in by_client.items():
            spans.sort()
            starts: array[int] = array("q")
            ends: array[int] = array("q")
            for start, end in spans:
                if ends and start <= ends[-1]:
                    if end > ends[-1]:
                        ends[-1] = end
                else:
                    starts.append(start)
                    ends.append(end)
            built._starts[client] = starts
            built._ends[client] = ends
        return built

    def covers(self, client: int, clock: int) -> bool:
        """Whether ``(client, clock)`` lies in a deleted range."""
        ends = self._ends.get(client)
        if not ends:
            return False
        i = bisect_right(ends, clock)  # the first range ending after ``clock``
        return i < len(ends) and self._starts[client][i] <= clock

    def add(self, client: int, clock: int, length: int) -> None:
        """Mark ``[clock, clock + length)`` of ``client`` deleted, merging with neighbours."""
        start, end = clock, clock + length
        starts = self._starts.get(client)
        if starts is None:
            self._starts[client] = array("q", (start,))
            self._ends[client] = array("q", (end,))
            return
        ends = self._ends[client]
        if start > ends[-1]:  # the common case: past everything known
            starts.append(start)
            ends.append(end)
            return
        lo = bisect_left(ends, start)  # first range that ends at or after ``start``
        hi = bisect_right(starts, end)  # ranges from here on start after ``end``
        if lo < hi:  # overlapping or touching ranges are merged into one
            start = min(start, starts[lo])
            end = max(end, ends[hi - 1])
        starts[lo:hi] = array("q", (start,))
        ends[lo:hi] = array("q", (end,))

    def add_all(self, ranges: Iterable[Range]) -> None:
        for client, clock, length in ranges:
            self.add(client, clock, length)

    @property
    def range_count(self) -> int:
        """Ranges held (memory is 16 bytes each)."""
        return sum(len(s) for s in self._starts.values())
