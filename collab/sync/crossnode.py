"""A loaded doc's part in a deployment of several nodes sharing one store (``--fanout``).

Each commit of the doc is published with the seqs the store gave it (``stored``). Updates the
other nodes committed come in through the ``Follower`` (in seq order, gaps read from the
store), and ``apply_remote`` takes each through the same bounded scan, nesting check and apply
as a peer's update, with the ``REMOTE`` origin, relays what the Doc emitted to every peer here
(after what they were sent before), and records nothing: only the receiving node commits an
update. When the store turns out to hold another generation under the key (None: deleted; a
new one: re-created), whether a read shows it or the store refuses a commit for the old one
(``GenerationGone``: a client here wrote before the other node's notice arrived, and nothing
of it was stored), the doc's sockets close 4404 / 4409, as a joiner would be refused, and
the registry forgets the doc. Its awareness is shared with the other nodes following it
(``presence``: ``collab.sync.sharedpresence``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol

from collab import logs
from collab.errors import GenerationMismatch, HostileInput, NotFound, Refusal
from collab.fanout import Entry, Fanout
from collab.names import DocKey
from collab.settings import Settings
from collab.store.base import DocumentStore, StoredDoc
from collab.sync.follower import Follower
from collab.sync.hooks import SyncHooks
from collab.sync.journal import Journal
from collab.sync.outbox import Outbox
from collab.sync.peer import Peer
from collab.sync.presence import Presence
from collab.sync.replica import Replica
from collab.sync.sharedpresence import SharedPresence
from collab.wire import Limits, MalformedInput, framing, scan_update

log = logging.getLogger("collab.sync.crossnode")

REMOTE = "remote"  # the origin of updates other nodes committed
# Larger updates are published without their bytes: receivers read them from the store.
FANOUT_INLINE_BYTES = 1024 * 1024


class Host(Protocol):
    """The live doc, as its cross-node part uses it (``collab.sync.livedoc.LiveDoc``)."""

    key: DocKey
    settings: Settings
    limits: Limits
    replica: Replica
    journal: Journal
    outbox: Outbox
    hooks: SyncHooks
    peers: dict[int, Peer]
    presence: Presence
    failed: BaseException | None
    after_remote: Callable[[], None] | None

    @property
    def generation(self) -> str | None: ...
    @property
    def usable(self) -> bool: ...
    async def until_usable(self) -> None: ...
    async def load_state(self) -> None: ...
    def schedule_heal(self) -> None: ...
    def retire(self, reason: str, error: Refusal | None = None) -> None: ...
    def close_all(self, code: int, reason: str) -> None: ...
    def broadcast(self, frame: bytes, exclude: int | None = None) -> None: ...


class CrossNode:
    """Publishes the host's commits; is the ``Follower``'s target for the others'."""

    def __init__(self, live: Host, fanout: Fanout, store: DocumentStore) -> None:
        self.live = live
        self.fanout = fanout
        self.follower = Follower(self, live.journal.held, store, live.hooks)
        self.presence = SharedPresence(live, fanout)
        self.on_retire: Callable[[], None] | None = None  # the registry forgets the doc
        live.journal.on_stored = self.stored
        live.journal.on_gone = self.generation_changed  # a commit refused: the same close

    # -- the live doc's life -------------------------------------------------------------

    async def load(self) -> None:
        """Subscribe, then read the store: what is published after the read arrives, what
        was published before it is in what it read."""
        try:
            await self.fanout.subscribe(self.live.key, self.follower)  # cancellable: a slow Redis
            await self.live.load_state()
            await self.presence.start()
        except BaseException:
            self.detach()
            raise
        self.follower.resume()

    def resume(self) -> None:
        """The replica was rebuilt from the store: apply what waited meanwhile."""
        self.follower.resume()

    def detach(self) -> None:
        self.follower.close()
        self.fanout.unsubscribe(self.live.key, self.follower)
        self.presence.stop()

    async def catch_up(self) -> None:
        """Take in everything the store holds that the replica lacks, by a read started now,
        so a joiner sees whatever anyone saw "saved" on any node. Raises what the joiner is
        told if the doc turned out deleted (NotFound) or re-created (GenerationMismatch)."""
        await self.follower.catch_up()
        await self.live.until_usable()

    def stored(self, first: int, batch: list[bytes]) -> None:
        """A commit returned with seqs ``first``...: publish each update with its seq."""
        generation = self.live.journal.generation
        if generation is not None:
            for seq, update in enumerate(batch, start=first):
                carried = update if len(update) <= FANOUT_INLINE_BYTES else None
                self.fanout.publish(self.live.key, Entry(seq, generation, carried))
        self.follower.resume()  # entries that waited for our own seqs

    # -- the Follower's target -----------------------------------------------------------

    @property
    def key(self) -> DocKey:
        return self.live.key

    @property
    def generation(self) -> str | None:
        return self.live.generation

    @property
    def usable(self) -> bool:
        return self.live.usable

    @property
    def active(self) -> bool:
        return bool(self.live.peers)

    async def until_usable(self) -> None:
        await self.live.until_usable()

    def rebuild(self) -> None:
        self.live.schedule_heal()

    def apply_remote(self, update: bytes) -> bool:
        """An update another node committed: scanned, checked and applied like a peer's, with
        the REMOTE origin, relayed to every peer here, never recorded; the live doc's
        ``after_remote`` is told when it changed the Doc. False if refused."""
        live = self.live
        try:
            info = scan_update(update, live.limits)
            if info.is_empty:
                return True
            delta = live.replica.check(info)
        except MalformedInput as exc:
            log.warning("remote update refused in %s: %s", live.key, exc.reason)
            return False
        if delta.pending_total > live.settings.max_pending_structs:
            live.schedule_heal()
            return False
        try:
            emitted, seconds = live.replica.apply(update, delta, origin=REMOTE)
        except HostileInput as exc:
            log.warning("remote update refused by yrs in %s: %r", live.key, exc.__cause__)
            live.schedule_heal()
            return False
        live.hooks.update_applied(seconds)
        deleted = sum(length for _, _, length in info.deletes) if info.deletes else 0
        live.journal.note_remote(len(update), deleted)
        for update_out in emitted:
            live.outbox.after_commit(None, framing.sync_update(update_out))
        if emitted and live.after_remote is not None:
            live.after_remote()
        return True

    def adopt_stored(self, stored: StoredDoc) -> None:
        """The doc was created on another node after our load: it is that generation."""
        if self.live.journal.generation is None:
            self.live.journal.generation = stored.generation

    def generation_changed(self, generation: str | None) -> None:
        live = self.live
        if live.failed is not None:
            return
        deleted = generation is None
        reason = "document deleted" if deleted else "document reset"
        log.info(
            "%s: %s on another node, closing %d sockets",
            live.key,
            reason,
            len(live.peers),
            extra=logs.doc_fields(live.key),
        )
        live.retire(reason, NotFound(reason) if deleted else GenerationMismatch())
        live.close_all(4404 if deleted else 4409, reason)
        self.detach()
        if self.on_retire is not None:
            self.on_retire()
