"""Which of a doc's stored updates a replica holds, by sequence number.

Several nodes append to one doc, so a node's replica holds its own commits (whose numbers the
store gives back) and the other nodes' (through the fan-out, or read from the store), in no
particular order: 5 and 6 may be ours before 4 arrives. ``SeqSet`` keeps that as ``head``
(every seq up to it is held) plus the few held beyond it; compaction folds only up to ``head``,
and a catch-up reads the store from ``head``.
"""

from __future__ import annotations


class SeqSet:
    def __init__(self, head: int = 0) -> None:
        self.head = head
        self._ahead: set[int] = set()

    def __contains__(self, seq: int) -> bool:
        return seq <= self.head or seq in self._ahead

    def __repr__(self) -> str:
        return f"SeqSet(head={self.head}, ahead={sorted(self._ahead)})"

    @property
    def has_holes(self) -> bool:
        """Whether something past ``head`` is held while something before it is not."""
        return bool(self._ahead)

    @property
    def last(self) -> int:
        """The highest seq held."""
        return max(self._ahead, default=self.head)

    def add(self, seq: int) -> None:
        if seq in self:
            return
        if seq == self.head + 1:
            self.head = seq
            self._advance()
        else:
            self._ahead.add(seq)

    def add_range(self, first: int, last: int) -> None:
        """Every seq from ``first`` to ``last`` (one commit's rows)."""
        if first <= self.head + 1:
            self.cover(last)
        else:
            self._ahead.update(range(first, last + 1))

    def cover(self, upto: int) -> None:
        """Every seq up to ``upto`` is held (a whole-doc read)."""
        if upto > self.head:
            self.head = upto
            self._ahead = {s for s in self._ahead if s > upto}
            self._advance()

    def reset(self, head: int) -> None:
        """Exactly every seq up to ``head`` (a replica rebuilt from the store)."""
        self.head = head
        self._ahead.clear()

    def _advance(self) -> None:
        ahead = self._ahead
        while self.head + 1 in ahead:
            self.head += 1
            ahead.discard(self.head)
