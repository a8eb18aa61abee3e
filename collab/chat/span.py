"""What a live window knows of its chat doc (``collab.chat.window``): the messages it shows, in
seq order, the archive line below them, and, with several nodes, this node's latest writes of
messages and which of them another node's update changed since."""

from __future__ import annotations

import bisect
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from pycrdt import Doc

from collab.chat.schema import entry_value, info_value, messages_map, shows
from collab.sync.crossnode import REMOTE

RECHECK_S = 10.0  # how long a node checks its own write of a message against other nodes'


@dataclass
class WindowState:
    """(seq, id) of the messages in the doc, in seq order; the archive line below them; the
    doc's version just after this node last changed it (another: someone else changed it)."""

    live: deque[tuple[int, str]] = field(default_factory=deque)
    ids: set[str] = field(default_factory=set)
    archived_through: int = 0
    last_seq: int = 0
    version: int = -1
    # With several nodes: the doc whose ``messages`` is watched; message id -> (monotonic time,
    # the value) of this node's latest write of it, oldest first; and which of those another
    # node's update changed since the last check.
    watched: Doc[Any] | None = None
    written: dict[str, tuple[float, dict[str, Any]]] = field(default_factory=dict)
    touched: set[str] = field(default_factory=set)
    observing: tuple[Any, Any] | None = None

    def wrote(self, message_id: str, value: dict[str, Any], now: float) -> None:
        if self.watched is None:
            return  # one node: nobody else writes the doc
        self.written.pop(message_id, None)  # to the end: the dict stays in time order
        self.written[message_id] = (now, value)
        while self.written:
            oldest = next(iter(self.written))
            if now - self.written[oldest][0] <= RECHECK_S:
                break
            del self.written[oldest]

    def watch(self, doc: Doc[Any]) -> None:
        """Note the messages another node's update changes (a doc of several nodes only: the
        observer costs every write of the doc)."""
        if self.watched is doc:
            return
        self.watched = doc

        def observe(event: Any) -> None:
            if event.transaction.origin == REMOTE and self.written:
                self.touched.update(k for k in event.keys if k in self.written)

        messages = messages_map(doc)
        # pycrdt drops the observer with the Map object that holds it: keep both
        self.observing = (messages, messages.observe(observe))

    def overwritten(self, doc: Doc[Any]) -> list[str]:
        """The messages this node wrote lately that another node's update made the doc show
        otherwise (its concurrent write won, or a later one came)."""
        touched, self.touched = self.touched, set()
        messages = messages_map(doc)
        return [
            message_id
            for message_id in touched
            if message_id in self.ids
            and message_id in self.written
            and not shows(messages.get(message_id), self.written[message_id][1])
        ]

    def insert(self, seq: int, message_id: str) -> None:
        entry = (seq, message_id)
        if not self.live or self.live[-1] < entry:
            self.live.append(entry)  # the usual case: the newest message
        else:
            bisect.insort(self.live, entry)  # another node's, or ours after another's
        self.ids.add(message_id)
        self.last_seq = max(self.last_seq, seq)

    def take_in(self, doc: Doc[Any]) -> None:
        """What changed in the doc besides this window's own changes: other nodes' messages,
        drops and ``info`` (or a rebuild from the store). One pass over the doc's keys."""
        messages = messages_map(doc)
        held = set(messages.keys())
        gone = self.ids - held
        if gone:
            self.live = deque(entry for entry in self.live if entry[1] not in gone)
            self.ids -= gone
        for message_id in held - self.ids:
            entry = messages.get(message_id)
            seq = entry_value(entry, "seq")
            if isinstance(seq, int | float) and not isinstance(seq, bool):
                self.insert(int(seq), message_id)
        self.last_seq = max(self.last_seq, info_value(doc, "last_seq"))
        self.archived_through = max(self.archived_through, info_value(doc, "archived_through"))

    def move_line(self, size: int) -> list[str]:
        """Keep the latest ``size`` seqs: raise the line, return the ids that leave the doc."""
        self.archived_through = max(self.archived_through, self.last_seq - size)
        dropped = []
        while self.live and self.live[0][0] <= self.archived_through:
            _, message_id = self.live.popleft()
            self.ids.discard(message_id)
            dropped.append(message_id)
        return dropped
