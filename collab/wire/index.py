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
  types")`` beyond ``max_roots``; ``UnresolvedReference`` for a reference to the item's *own*
  client at a clock >= the item's clock (no encoder can produce it: a neighbour or parent
  always exists before the item; yrs does not treat it as missing and integrates it in an
  undefined way);
- **counts** (``IndexDelta.pending_structs``): structs after a clock gap, structs waiting on a
  cross-client reference that is neither in the index nor in this update, and delete ranges on
  content not known yet. These are exactly what yrs parks as pending; legitimate peers produce
  them rarely (a SyncStep2 carrying their own pending structs, tab races), so the caller
  charges them to a per-room budget and closes the offender when it runs out.

``check`` never mutates; ``commit`` applies the delta after ``apply_update`` succeeded. The
two must be called in sequence per document (a stale delta raises ``RuntimeError``). If an
apply fails or the process restarts, rebuild with ``from_update(doc.get_update())``.
"""

from __future__ import annotations

import heapq
from bisect import bisect_right
from collections import deque
from dataclasses import dataclass, replace
from typing import TypeAlias

from collab.wire.caps import Limits
from collab.wire.lib0 import MalformedInput, UnresolvedReference
from collab.wire.update import Parent, Range, StructRef, UpdateInfo, scan_update

__all__ = ["DocIndex", "IndexDelta"]

ID: TypeAlias = tuple[int, int]


@dataclass(frozen=True)
class IndexDelta:
    """Tentative changes from :meth:`DocIndex.check`, applied by :meth:`DocIndex.commit`."""

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
        index.commit(index.check(info))
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
    def run_count(self) -> int:
        """Number of clock runs held (memory grows with this, not with characters)."""
        return sum(len(s) for s in self._starts.values())

    def type_depth(self, client: int, clock: int) -> int | None:
        return self._types.get((client, clock))

    def check(self, info: UpdateInfo) -> IndexDelta:
        """Integrate ``info`` as yrs would, without mutating the index (see the module doc)."""
        run = _Pass(self, _queues(self._pending, info))
        run.integrate()
        return run.delta(self._generation, info.deletes)

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
        self._pending = delta.pending
        self._generation += 1


_NO_RUN = object()


def _clock_of(s: StructRef) -> int:
    return s.clock


def _queues(pending: tuple[StructRef, ...], info: UpdateInfo) -> dict[int, list[StructRef]]:
    """Per client, in clock order: earlier pending structs, this update's items and GC ranges."""
    queues: dict[int, list[StructRef]] = {}
    for s in pending:
        queues.setdefault(s.client, []).append(s)
    for s in info.structs:
        if s.length:  # yrs drops zero-length items at decode (§1.4)
            queues.setdefault(s.client, []).append(s)
    for client, clock, length in info.gc_ranges:
        gc = StructRef(client, clock, length, 0, None, None, None, None, None)
        queues.setdefault(client, []).append(gc)
    # Skips only mark holes; yrs ignores them (update.rs:335).
    for q in queues.values():
        q.sort(key=_clock_of)
    return queues


class _Pass:
    """One :meth:`DocIndex.check`: the committed index, read only, and this update's changes.

    Each step of yrs' integration order is one method: wait for a dependency
    (:meth:`_blocker`), resolve the parent and the type depth (:meth:`_place`), extend the
    client's runs (:meth:`_extend`); :meth:`integrate` drives them to a fixpoint.
    """

    __slots__ = (
        "base",
        "integrated",
        "limits",
        "max_depth",
        "new_parents",
        "new_roots",
        "new_starts",
        "new_types",
        "old",
        "parents",
        "ptr",
        "queues",
        "resolved",
        "roots",
        "starts",
        "state",
        "types",
    )

    def __init__(self, index: DocIndex, queues: dict[int, list[StructRef]]) -> None:
        self.limits = index._limits
        self.base = index._state
        self.starts = index._starts
        self.parents = index._parents
        self.types = index._types
        self.roots = index._roots
        self.old = {id(s) for s in index._pending}
        self.queues = queues
        self.ptr = dict.fromkeys(queues, 0)  # client -> first struct not integrated
        self.state: dict[int, int] = {}
        self.new_starts: dict[int, list[int]] = {}
        self.new_parents: dict[int, list[Parent]] = {}
        self.new_types: dict[ID, int] = {}
        self.new_roots: set[str] = set()
        self.integrated = self.resolved = self.max_depth = 0

    def integrate(self) -> None:
        """Integrate each client's queue while it can; a blocked client waits on the client it
        needs (a heap per awaited client, woken when that client's clock passes the clock)."""
        queues, ptr, state, base, old = self.queues, self.ptr, self.state, self.base, self.old
        waiting: dict[int, list[tuple[int, int]]] = {}
        ready = deque(sorted(queues, reverse=True))
        integrated = resolved = 0
        while ready:
            c = ready.popleft()
            q = queues[c]
            i = ptr[c]
            while i < len(q):
                s = q[i]
                f = state.get(c)
                if f is None:
                    f = base.get(c, 0)
                if s.clock > f:
                    break  # clock gap: only this client's own earlier structs could fill it
                dep = self._blocker(s, c)
                if dep is not None:
                    heapq.heappush(waiting.setdefault(dep[0], []), (dep[1], c))
                    break
                i += 1
                end = s.clock + s.length
                if end <= f:
                    continue  # already known (reconnect SyncStep2 overlap)
                self._extend(c, f, self._place(s, c))
                state[c] = end
                integrated += 1
                if id(s) in old:
                    resolved += 1
                w = waiting.get(c)
                while w and w[0][0] < end:
                    ready.append(heapq.heappop(w)[1])
            ptr[c] = i
        self.integrated = integrated
        self.resolved = resolved

    def _blocker(self, s: StructRef, c: int) -> ID | None:
        """The reference ``s`` waits on (yrs keeps it pending until that is known), or None."""
        for ref in (s.origin, s.right_origin, s.parent):
            if type(ref) is tuple:
                rc, rk = ref
                if rc == c:
                    if rk > s.clock:
                        raise UnresolvedReference("reference to own future clock")
                    if rk == s.clock:
                        # pycrdt names the zero-length item it emits at this clock as
                        # right origin (§1.4); yrs drops that item and parks this one.
                        return ref
                elif rk >= self.state.get(rc, self.base.get(rc, 0)):
                    return ref
        return None

    def _place(self, s: StructRef, c: int) -> Parent:
        """The parent ``s`` integrates under (§4 routes 1-3); a type's depth is recorded."""
        parent: Parent = None
        if s.content_ref == 0:
            pass  # GC range: no parent
        elif s.origin is None and s.right_origin is None:
            parent = self._explicit_parent(s.parent)
        else:
            if s.origin is not None:
                parent = self._known_parent(*s.origin)
            if parent is None and s.right_origin is not None:
                parent = self._known_parent(*s.right_origin)
        if s.type_ref is not None:
            if isinstance(parent, tuple):
                pd = self.new_types.get(parent)
                depth = (pd if pd is not None else self.types[parent]) + 1
            else:
                depth = 1
            if depth > self.limits.max_type_depth:
                raise MalformedInput("type nesting too deep")
            self.new_types[(c, s.clock)] = depth
            if depth > self.max_depth:
                self.max_depth = depth
        return parent

    def _explicit_parent(self, p: Parent) -> Parent:
        """A root name (counted against ``max_roots``) or a known type ID, else None."""
        if isinstance(p, str):
            if p not in self.roots and p not in self.new_roots:
                if len(self.roots) + len(self.new_roots) >= self.limits.max_roots:
                    raise MalformedInput("too many root types")
                self.new_roots.add(p)
            return p
        if p is not None and (p in self.new_types or p in self.types):
            return p
        # else: the parent ID is GC'd or not a type: yrs makes the item GC
        # (or refuses the update with InvalidParent).
        return None

    def _known_parent(self, c: int, k: int) -> Parent:
        """The parent of the run holding ``(c, k)``, from this update's runs or the index."""
        ns = self.new_starts.get(c)
        if ns and k >= ns[0]:
            return self.new_parents[c][bisect_right(ns, k) - 1]
        return self.parents[c][bisect_right(self.starts[c], k) - 1]

    def _extend(self, c: int, f: int, parent: Parent) -> None:
        """Start a new run for client ``c`` at clock ``f`` unless the last one has ``parent``."""
        ns = self.new_starts.get(c)
        if ns:
            last: object = self.new_parents[c][-1]
        elif c in self.parents:
            last = self.parents[c][-1]
        else:
            last = _NO_RUN
        if last != parent or last is _NO_RUN:
            if ns is None:
                self.new_starts[c] = [f]
                self.new_parents[c] = [parent]
            else:
                ns.append(f)
                self.new_parents[c].append(parent)

    def delta(self, generation: int, deletes: tuple[Range, ...]) -> IndexDelta:
        """The tentative changes, with what is left pending and the delete ranges not known."""
        pending: list[StructRef] = []
        pending_structs = 0
        for c, q in self.queues.items():
            for s in q[self.ptr[c] :]:
                pending.append(s)
                if id(s) not in self.old:
                    pending_structs += 1
        pending_deletes = 0
        for c, k, n in deletes:
            if k + n > self.state.get(c, self.base.get(c, 0)):
                pending_deletes += 1
        return IndexDelta(
            generation=generation,
            states=self.state,
            runs={
                c: list(zip(ns, self.new_parents[c], strict=True))
                for c, ns in self.new_starts.items()
            },
            types=self.new_types,
            roots=frozenset(self.new_roots),
            pending=tuple(pending),
            pending_structs=pending_structs + pending_deletes,
            pending_deletes=pending_deletes,
            integrated_structs=self.integrated,
            resolved_pending=self.resolved,
            max_depth=self.max_depth,
        )
