"""What the update path reports upward, as one small Protocol passed to constructors.

The sync layer never imports metrics or the audit log: the app hands the registry one object
implementing ``SyncHooks`` (``NoHooks`` when nothing listens, as in-process tests do).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from collab.errors import CollabError
from collab.names import DocKey

if TYPE_CHECKING:
    from collab.sync.peer import Peer


class SyncHooks(Protocol):
    def update_applied(self, seconds: float) -> None:
        """One client update was applied to its Doc in ``seconds``."""

    def committed(self, seconds: float) -> None:
        """One group commit returned (durable) after ``seconds``."""

    def stored(self, key: DocKey) -> None:
        """A group commit of ``key`` returned: its stored content changed (search re-indexes)."""

    def compacted(self, seconds: float) -> None:
        """One compaction ran for ``seconds``."""

    def write_refused(self, key: DocKey, peer: Peer, first: bool) -> None:
        """A read-only peer's update was refused (``first``: the first on its socket)."""

    def slow_consumer(self) -> None:
        """A socket was closed 1013 because it did not read fast enough."""

    def refused(self, exc: CollabError) -> None:
        """A socket is being closed for ``exc`` (a refusal at a quota is counted by its enum)."""

    def doc_changed(self, key: DocKey) -> None:
        """A client's update changed the doc (called per applied update: debounce it)."""

    def rebuilt(self) -> None:
        """A loaded Doc is being rebuilt from the store (yrs refused an update, or too much
        was pending): the costly path the index exists to keep rare."""

    def fanout_received(self, lag: float) -> None:
        """An entry of another node arrived ``lag`` seconds after it was published."""

    def gap_filled(self, rows: int) -> None:
        """A catch-up read from the store applied ``rows`` updates the fan-out had not
        delivered (a gap, a lost channel, a joiner's read-your-writes)."""

    def head_polled(self) -> None:
        """A periodic check of a doc against the store's head ran."""


class NoHooks:
    def update_applied(self, seconds: float) -> None:
        pass

    def committed(self, seconds: float) -> None:
        pass

    def stored(self, key: DocKey) -> None:
        pass

    def compacted(self, seconds: float) -> None:
        pass

    def write_refused(self, key: DocKey, peer: Peer, first: bool) -> None:
        pass

    def slow_consumer(self) -> None:
        pass

    def refused(self, exc: CollabError) -> None:
        pass

    def doc_changed(self, key: DocKey) -> None:
        pass

    def rebuilt(self) -> None:
        pass

    def fanout_received(self, lag: float) -> None:
        pass

    def gap_filled(self, rows: int) -> None:
        pass

    def head_polled(self) -> None:
        pass
