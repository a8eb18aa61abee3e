"""One :meth:`DocIndex.check`: an update's structs integrated against the index, yrs' way (§4).

Split from ``collab.wire.index``, which keeps the committed state and the contract (what raises,
what is counted as pending): this module is the algorithm. :class:`Integration` reads the
committed index without changing it and gathers this update's changes apart, so a refused
update leaves nothing behind. It mirrors yrs ``Update::integrate``: per client in clock order,
an item waits while its start clock is ahead of the known clock or a cross-client reference is
not known yet; a waiting client is woken when the client it needs advances (a heap per awaited
client), which resolves references between clients of one update to a fixpoint in O(n log n).
"""

from __future__ import annotations

import heapq
from bisect import bisect_right
from collections import deque
from collections.abc import Mapping, Set
from typing import TypeAlias

from collab.wire.caps import Limits
from collab.wire.lib0 import MalformedInput, UnresolvedReference
from collab.wire.tombstones import Tombstones
from collab.wire.update import Parent, Range, StructRef, UpdateInfo

__all__ = ["ID", "Integration"]

ID: TypeAlias = tuple[int, int]

_NO_RUN = object()

# Refusal reasons (they become the 1007 close reason the sender sees).
NOT_A_TYPE = "parent ID names an item that is not a shared type"
PARENT_UNKNOWN = "parent ID names an item the document does not hold"
OWN_FUTURE = "reference to own future clock"
OWN_CLOCK = (
    "item names its own clock as a neighbour (pycrdt 0.14.13 empty item): yrs never integrates it"
)


class Integration:
    """The tentative changes of one update; read the attributes after :meth:`run`.

    Each step of yrs' order is one method: wait for a dependency (:meth:`_blocker`), resolve
    the parent and the type depth (:meth:`_place`), extend the client's runs (:meth:`_extend`);
    :meth:`_integrate` drives them to a fixpoint.
    """

    __slots__ = (
        "base",
        "integrated",
        "limits",
        "max_depth",
        "new_dead",
        "new_parents",
        "new_roots",
        "new_starts",
        "new_types",
        "old",
        "parents",
        "pending",
        "pending_deletes",
        "pending_structs",
        "ptr",
        "queues",
        "resolved",
        "roots",
        "starts",
        "state",
        "tombstones",
        "types",
    )

    def __init__(
        self,
        limits: Limits,
        *,
        state: Mapping[int, int],
        starts: Mapping[int, list[int]],
        parents: Mapping[int, list[Parent]],
        types: Mapping[ID, int],
        roots: Set[str],
        pending: tuple[StructRef, ...],
        tombstones: Tombstones,
    ) -> None:
        """The committed index: per client state clock and runs, type depths, roots, pending,
        and the deleted ranges (read only)."""
        self.limits = limits
        self.base = state
        self.starts = starts
        self.parents = parents
        self.types = types
        self.roots = roots
        self.tombstones = tombstones
        self.old = set(map(id, pending))  # structs pending before this update
        self.queues: dict[int, list[StructRef]] = {}
        self.ptr: dict[int, int] = {}  # client -> first struct not integrated
        # Results: this update's changes, and what is left pending after it.
        self.state: dict[int, int] = {}
        self.new_starts: dict[int, list[int]] = {}
        self.new_parents: dict[int, list[Parent]] = {}
        self.new_types: dict[ID, int] = {}
        self.new_roots: set[str] = set()
        # GC ranges and Deleted items this update integrates: per client, sorted [start, end)
        self.new_dead: dict[int, tuple[list[int], list[int]]] = {}
        self.pending: tuple[StructRef, ...] = pending
        self.pending_structs = self.pending_deletes = 0  # new from this update
        self.integrated = self.resolved = self.max_depth = 0

    def run(self, info: UpdateInfo) -> None:
        """Integrate ``info`` plus the earlier pending structs; raise MalformedInput."""
        self.queues = _queues(self.pending, info)
        self.ptr = dict.fromkeys(self.queues, 0)
        self._integrate()
        self._left_pending(info.deletes)

    def runs(self) -> dict[int, list[tuple[int, Parent]]]:
        """Per client, the runs ``(start, parent)`` this update appends."""
        if not self.new_starts:
            return {}  # the common case: every item continued its client's last run
        return {
            c: list(zip(ns, self.new_parents[c], strict=True)) for c, ns in self.new_starts.items()
        }

    def _integrate(self) -> None:
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
                if s.content_ref < 2:  # GC range or Deleted content: a legitimate parent ID
                    self._mark_dead(c, f, end)
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
                        raise UnresolvedReference(OWN_FUTURE)
                    if rk == s.clock:
                        # pycrdt 0.14.13 names the zero-length item it emits at this clock as
                        # right origin (§1.4). yrs drops that item at decode and parks this one
                        # for ever, even when the zero-length item travels with it; Yjs throws
                        # on the incremental update. Refused, so the sender learns at once.
                        raise UnresolvedReference(OWN_CLOCK)
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
        if p is None or p in self.new_types or p in self.types:
            return p
        if self._is_dead(*p):
            return None  # a deleted or collected parent: yrs integrates the item as deleted
        # A live item that is not a type: yrs refuses the whole update (InvalidParent) and the
        # room would rebuild its Doc for it; Yjs would leave the item without a parent.
        raise MalformedInput(NOT_A_TYPE)

    def _check_parked(self, s: StructRef, c: int) -> None:
        """What an item left pending is refused for now rather than when it resolves.

        yrs retries its pending items on every later update, and one whose parent turns out to
        be a live non-type item makes *that* update fail (half-applied: the room rebuilds), so
        a pending item with an unknown parent ID would let anyone spoil the next edit of the
        client whose future clock it names. A parent already known as a type or a deleted item
        stays one; anything else is refused now, from its sender. So is a reference to the
        item's own clock (behind a clock gap, ``_blocker`` has not seen it).
        """
        for ref in (s.origin, s.right_origin, s.parent):
            if type(ref) is tuple and ref[0] == c and ref[1] >= s.clock:
                raise UnresolvedReference(OWN_CLOCK if ref[1] == s.clock else OWN_FUTURE)
        p = s.parent
        if type(p) is not tuple or p in self.new_types or p in self.types or self._is_dead(*p):
            return
        pc, pk = p
        known = self.state.get(pc)
        if pk < (known if known is not None else self.base.get(pc, 0)):
            raise MalformedInput(NOT_A_TYPE)
        raise MalformedInput(PARENT_UNKNOWN)

    def _is_dead(self, c: int, k: int) -> bool:
        """Whether ``(c, k)`` is deleted: committed tombstones, or this update's GC/Deleted."""
        if self.tombstones.covers(c, k):
            return True
        spans = self.new_dead.get(c)
        if spans is None:
            return False
        starts, ends = spans
        i = bisect_right(ends, k)
        return i < len(ends) and starts[i] <= k

    def _mark_dead(self, c: int, start: int, end: int) -> None:
        """This update's GC range or Deleted item ``[start, end)`` of ``c`` (in clock order)."""
        spans = self.new_dead.get(c)
        if spans is None:
            self.new_dead[c] = ([start], [end])
        elif spans[1][-1] == start:
            spans[1][-1] = end
        else:
            spans[0].append(start)
            spans[1].append(end)

    def dead_ranges(self) -> list[Range]:
        """The GC ranges and Deleted items this update integrated, as ``(client, clock, len)``."""
        return [
            (c, start, end - start)
            for c, (starts, ends) in self.new_dead.items()
            for start, end in zip(starts, ends, strict=True)
        ]

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

    def _left_pending(self, deletes: tuple[Range, ...]) -> None:
        """What stays pending, and what of it is new: structs and delete ranges not known."""
        pending: list[StructRef] = []
        for c, q in self.queues.items():
            for s in q[self.ptr[c] :]:
                pending.append(s)
                if id(s) not in self.old:
                    self.pending_structs += 1
                    self._check_parked(s, c)
        for c, k, n in deletes:
            if k + n > self.state.get(c, self.base.get(c, 0)):
                self.pending_deletes += 1
        self.pending = tuple(pending)


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
        if len(q) > 1:
            q.sort(key=_clock_of)
    return queues
