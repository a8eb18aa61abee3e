"""Per-document index of shared-type depth and clock runs (YJS-WIRE.md §4).

Why: yrs deletes and garbage-collects nested shared types recursively, so a chain of nested
Y.Map/Y.Array/Y.Xml* delivered a few levels per update, from many connections, can later be
torn down by a tiny delete and crash the process (§3.1, §4). No single update looks deep, so
the depth has to be tracked across updates, per document.

What is kept (memory grows with editing sessions, not characters):

- per client, the next expected clock (``state_clock``) and a list of clock **runs**
  ``start -> parent`` tiling ``[0, state_clock)``; consecutive items of one client under one
  parent share one run. The parent is a root name, the ID of a ContentType item, or ``None``
  for GC'd ranges and items whose parent is gone;
- ``depth`` of every ContentType item (root types are depth 0, a type under a root is 1);
- the structs that yrs would keep *pending*, retried on every later update.

How an update is checked (``check``), mirroring yrs ``Update::integrate``: each client's
structs are integrated in clock order while the start clock is not beyond the known clock and
every cross-client reference (origin, right origin, parent ID) is known. A blocked client waits
on the client it needs (a worklist woken when that client's clock advances), so cross-client
references inside one update resolve to a fixpoint in O(n log n). Implicit parents come from the
origin's run, or failing that the right origin's run (§4 route 3). Every ContentType item that
integrates gets ``depth(parent) + 1`` and the update is refused above ``max_type_depth``.
Resolution is conservative: where Yjs would drop an item for a GC neighbour but a live parent
is also reachable, the live parent is used, so depth is never under-counted.

What raises and what is counted:

- **raises** ``MalformedInput("type nesting too deep")``; ``MalformedInput("too many root
  types")`` beyond ``max_roots``; ``MalformedInput`` for a parent ID naming a live item that is
  not a shared type (yrs refuses the whole update with ``InvalidParent``, which would cost the
  room a rebuild; a *deleted* parent is accepted, as yrs does: GC'd ranges, Deleted content and
  everything a delete set named are kept in :class:`collab.wire.tombstones.Tombstones`), and
  for an item left pending whose parent ID is not known yet (once known it might be such an
  item, and yrs would then fail the update of whoever completed it: see
  ``Integration._check_parked_parent``); ``UnresolvedReference`` for a reference to the
  item's *own* client at a clock > the item's clock (no encoder can produce it), or *at* the
  item's clock: pycrdt 0.14.13 names a zero-length item it emitted there as right origin,
  which yrs parks for ever (even when the zero-length item travels in the same update) and
  Yjs throws on;
- **counts** (``IndexDelta.pending_structs``): structs after a clock gap, structs waiting on an
  origin or right origin that is neither in the index nor in this update, and delete ranges on
  content not known yet. These are exactly what yrs parks as pending; legitimate peers produce
  them rarely (a SyncStep2 carrying their own pending structs, tab races), so the caller
  charges them to a per-room budget and closes the offender when it runs out.

``check`` never mutates (the integration itself is ``collab.wire.integrate``); ``commit``
applies the delta after ``apply_update`` succeeded. The two must be called in sequence per
document (a stale delta raises ``RuntimeError``). If an apply fails or the process restarts,
rebuild with ``from_update(doc.get_update())``.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, replace

from collab.wire.caps import Limits
from collab.wire.integrate import ID, Integration
from collab.wire.tombstones import Tombstones
from collab.wire.update import Parent, Range, StructRef, UpdateInfo, scan_update

__all__ = ["DocIndex", "IndexDelta"]


@dataclass(slots=True)
class IndexDelta:
    """Tentative changes from :meth:`DocIndex.check`, applied by :meth:`DocIndex.commit`.

    Not frozen: one is built for every inbound update, and a frozen dataclass pays an
    ``object.__setattr__`` call per field. Nothing changes it after ``check``.
    """

    generation: int
    states: dict[int, int]  # client -> new state clock
    runs: dict[int, list[tuple[int, Parent]]]  # client -> appended (start, parent)
    types: dict[ID, int]  # new ContentType item -> depth
    roots: frozenset[str]  # root names seen for the first time
    pending: tuple[StructRef, ...]  # the whole pending set after commit (GC ranges: ref 0)
    pending_structs: int  # from this update: structs left pending + delete ranges not known
    pending_deletes: int  # of which delete ranges
    integrated_structs: int  # structs (incl. earlier pending ones) adding new clock ranges
    resolved_pending: int  # earlier pending structs that integrate now
    max_depth: int  # deepest ContentType item integrated by this update (0 if none)
    deleted: tuple[Range, ...] = ()  # GC ranges, Deleted items and delete-set ranges

    @property
    def pending_total(self) -> int:
        """Pending structs the index holds after commit (compare with the room budget)."""
        return len(self.pending)


class DocIndex:
    """Per-document index of shared-type depth and clock runs (YJS-WIRE §4)."""

    def __init__(self, limits: Limits) -> None:
        self._limits = limits
        self._state: dict[int, int] = {}
        self._starts: dict[int, list[int]] = {}
        self._parents: dict[int, list[Parent]] = {}
        self._types: dict[ID, int] = {}
        self._roots: set[str] = set()
        self._pending: tuple[StructRef, ...] = ()
        self._tombstones = Tombstones()
        self._generation = 0

    @classmethod
    def from_update(cls, full_state: bytes, limits: Limits) -> DocIndex:
        """Build the index from ``doc.get_update()`` at room load.

        The element budget is lifted to the document size (it bounds a client frame, not a
        document) and bigint / non-finite floats are allowed (valid in the format, refused
        from clients only as policy); every other cap applies, so a stored document that
        violates one raises MalformedInput.
        """
        data = bytes(full_state)
        own = replace(limits, allow_bigint=True, allow_nonfinite_floats=True)
        info = scan_update(data, own, max_elements=max(limits.max_elements, len(data)))
        index = cls(limits)
        delta = index.check(info)
        # A whole document's delete set is large and unordered across sources: build the
        # tombstones in one sorted pass rather than range by range.
        index._tombstones = Tombstones.from_ranges(delta.deleted)
        index.commit(replace(delta, deleted=()))
        return index

    def drop_pending(self) -> None:
        """Forget the structs waiting on missing dependencies.

        Called when the room rebuilt its Doc from the store, which holds only integrated
        (emitted) content: yrs no longer holds those structs, so neither does the index. Every
        committed struct stays, so the index still describes the rebuilt Doc exactly.
        """
        self._pending = ()
        self._generation += 1

    def state_clock(self, client: int) -> int:
        """Next expected clock of ``client`` as the index knows it (0 if unknown)."""
        return self._state.get(client, 0)

    @property
    def pending_count(self) -> int:
        return len(self._pending)

    @property
    def tombstone_count(self) -> int:
        """Deleted ranges held (merged; 16 bytes each)."""
        return self._tombstones.range_count

    @property
    def run_count(self) -> int:
        """Number of clock runs held (memory grows with this, not with characters)."""
        return sum(len(s) for s in self._starts.values())

    def parent_of(self, client: int, clock: int) -> Parent:
        """The parent of the committed item at ``(client, clock)``: a root name, a type's ID,
        or None (not committed, a GC'd range, or a parent that is gone)."""
        starts = self._starts.get(client)
        if not starts or clock >= self._state.get(client, 0):
            return None
        return self._parents[client][bisect_right(starts, clock) - 1]

    def type_depth(self, client: int, clock: int) -> int | None:
        return self._types.get((client, clock))

    def check(self, info: UpdateInfo) -> IndexDelta:
        """Integrate ``info`` as yrs would, without mutating the index (see the module doc)."""
        run = Integration(
            self._limits,
            state=self._state,
            starts=self._starts,
            parents=self._parents,
            types=self._types,
            roots=self._roots,
            pending=self._pending,
            tombstones=self._tombstones,
        )
        run.run(info)
        return IndexDelta(
            generation=self._generation,
            states=run.state,
            runs=run.runs(),
            types=run.new_types,
            roots=frozenset(run.new_roots),
            pending=run.pending,
            pending_structs=run.pending_structs + run.pending_deletes,
            pending_deletes=run.pending_deletes,
            integrated_structs=run.integrated,
            resolved_pending=run.resolved,
            max_depth=run.max_depth,
            deleted=(*run.dead_ranges(), *info.deletes) if run.new_dead else info.deletes,
        )

    def commit(self, delta: IndexDelta) -> None:
        """Apply a delta from :meth:`check`; call only after the update was applied."""
        if delta.generation != self._generation:
            raise RuntimeError("stale IndexDelta: another update was committed since check()")
        self._state.update(delta.states)
        for c, runs in delta.runs.items():
            starts = self._starts.setdefault(c, [])
            parents = self._parents.setdefault(c, [])
            for start, parent in runs:
                starts.append(start)
                parents.append(parent)
        self._types.update(delta.types)
        self._roots.update(delta.roots)
        if delta.deleted:
            self._tombstones.add_all(delta.deleted)
        self._pending = delta.pending
        self._generation += 1
