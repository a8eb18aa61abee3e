"""A loaded document and its sockets: join, leave, dispatch, and the path of one update.

Every incoming update follows one order (DESIGN.md, The path of one update):

    bounded scan -> write check -> size quota -> nesting/pending check
    -> Replica.apply in doc.transaction(origin=peer), catching BaseException
    -> what the Doc emitted (nothing: a duplicate) -> Journal.record (group commit)
    -> on_committed: relay it, answer joiners, send "saved" echoes

Everything a peer may observe is released from one ordered outbox only after the state it
reflects is committed, so no client ever receives uncommitted state. A Doc that yrs refused
(a panic) is rebuilt from the store plus the not-yet-committed emitted updates. With several
nodes, ``nodes`` (``collab.sync.crossnode``) publishes commits and applies the other nodes'.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from pycrdt import Doc

from collab import logs
from collab.errors import DocTooLarge, HostileInput, Overloaded, Refusal, RoomFailed, must_propagate
from collab.fanout import Fanout
from collab.names import DocKey, is_reserved_doc
from collab.ratelimit import Bucket
from collab.settings import Settings
from collab.store.base import DocumentStore
from collab.sync.crossnode import CrossNode
from collab.sync.hooks import NoHooks, SyncHooks
from collab.sync.journal import Journal, failure_close
from collab.sync.outbox import Delivery, Outbox
from collab.sync.peer import Peer
from collab.sync.presence import AwarenessGate, Presence, TypingSweep
from collab.sync.replica import Replica
from collab.wire import (
    AwarenessEntry,
    MalformedInput,
    UpdateInfo,
    encode_awareness,
    framing,
    limits_from,
    read_request,
    request_cap,
    scan_awareness,
    scan_state_vector,
    scan_update,
)

log = logging.getLogger("collab.sync")
# SyncStep1 makes the server encode a diff of the whole doc: a small burst, then a slow refill.
SYNC_REQUEST_BURST = 4
SYNC_REQUEST_RATE = 0.5  # per second


class LiveDoc:
    def __init__(
        self,
        key: DocKey,
        store: DocumentStore,
        settings: Settings,
        hooks: SyncHooks | None = None,
        fanout: Fanout | None = None,
    ) -> None:
        self.key = key
        self.settings = settings
        self.limits = limits_from(settings)
        self.request_cap = request_cap(settings.max_message_length)
        self.readonly = is_reserved_doc(key.doc)
        self.hooks: SyncHooks = hooks or NoHooks()
        self.replica = Replica(self.limits)
        self.journal = Journal(
            key,
            store,
            settings,
            snapshot=self.replica.snapshot,
            on_committed=self._on_committed,
            on_failed=self._fail,
            hooks=self.hooks,
        )
        self.presence = Presence(typing_timeout=settings.typing_timeout)
        self.typing_sweep = TypingSweep(self.presence, self._broadcast_presence)
        self._awareness_gate = AwarenessGate(
            settings.awareness_per_second, settings.awareness_burst, self._release_awareness
        )
        self.peers: dict[int, Peer] = {}
        self.failed: BaseException | None = None
        self.refs = 0  # joined or joining sockets; counted by the registry
        self.refused_writes = 0
        self.outbox = Outbox(self.journal, self.broadcast)
        self._outbox = self.outbox.deliveries  # appended to directly on the hot path
        self._sync_requests: dict[int, Bucket] = {}
        self._healing: asyncio.Event | None = None  # while rebuilt (schedule_heal): 0.9 KB
        self.loaded = False
        # Called after another node's update was applied here (the chat window's check).
        self.after_remote: Callable[[], None] | None = None
        self.nodes = CrossNode(self, fanout, store) if fanout is not None else None

    @classmethod
    async def load(
        cls,
        key: DocKey,
        store: DocumentStore,
        settings: Settings,
        hooks: SyncHooks | None = None,
        fanout: Fanout | None = None,
    ) -> LiveDoc:
        live = cls(key, store, settings, hooks, fanout)
        await (live.nodes.load() if live.nodes is not None else live.load_state())
        return live

    async def load_state(self) -> None:
        """Read the doc from the store into the replica (once: ``load``)."""
        stored = await self.journal.store.load(self.key)
        await self.replica.rebuild(stored, [])
        self.journal.adopt(stored)
        self.loaded = True

    def detach(self) -> None:
        """Stop following other nodes (evicted, failed, deleted)."""
        if self.nodes is not None:
            self.nodes.detach()

    @property
    def doc(self) -> Doc[Any]:
        return self.replica.doc

    @property
    def generation(self) -> str | None:
        return self.journal.generation

    @property
    def exists(self) -> bool:
        return self.journal.exists

    @property
    def size(self) -> int:
        return self.journal.size

    @property
    def pending_commit_bytes(self) -> int:
        return self.journal.uncommitted_bytes

    @property
    def usable(self) -> bool:
        return self.loaded and self.failed is None and self._healing is None

    # -- peers -----------------------------------------------------------------------------

    async def join(self, peer: Peer) -> None:
        """Greet a newcomer: our state vector (so it sends what we lack) and who is here."""
        await self.until_usable()
        self.peers[peer.id] = peer
        peer.send(framing.sync_step1(self.replica.state_vector()))
        self._send_presence(peer)

    def leave(self, peer: Peer) -> None:
        if self.peers.pop(peer.id, None) is None:
            return
        self._sync_requests.pop(peer.id, None)
        self._awareness_gate.forget(peer.id)
        removed = self.presence.remove_peer(peer.id)
        if removed:
            self.broadcast(framing.awareness(encode_awareness(removed)), exclude=peer.id)

    def broadcast(self, frame: bytes, exclude: int | None = None) -> None:
        for peer in list(self.peers.values()):
            if peer.id != exclude:
                peer.send(frame)

    def close_all(self, code: int, reason: str) -> None:
        for peer in list(self.peers.values()):
            peer.close(code, reason)

    def retire(self, reason: str, error: Refusal | None = None) -> None:
        """Refuse every later frame (the doc is being deleted); never evicted."""
        if self.failed is None:
            self.failed = error or RoomFailed(reason)
        self.journal.halt()

    def pull_refused_edits(self, peer: Peer) -> None:
        """``peer`` may write now: ask for what it has that we refused (a SyncStep1)."""
        peer.readonly = False
        peer.denied_once = False
        peer.send(framing.sync_step1(self.replica.state_vector()))

    async def until_usable(self) -> None:
        if self._healing is not None:
            await self._healing.wait()
        if self.failed is not None:  # deleted or reset elsewhere: what a joiner is told
            raise self.failed if isinstance(self.failed, Refusal) else RoomFailed()

    def _send_presence(self, peer: Peer) -> None:
        present = self.presence.snapshot()
        if present:
            peer.send(framing.awareness(encode_awareness(present)))

    # -- messages --------------------------------------------------------------------------

    async def handle(self, peer: Peer, frame: bytes) -> None:
        """One frame from a peer. Raises CollabError to have that peer closed."""
        if self.failed is not None or self._healing is not None:  # rare: no await otherwise
            await self.until_usable()  # then discarded if the server closed the socket meanwhile
        if peer.takes_input:
            self.handle_now(peer, frame)

    def handle_now(self, peer: Peer, frame: bytes) -> None:
        """``handle`` while ``usable``: no await (``collab.sync.inline``)."""
        message = framing.decode_message(frame)
        try:
            if isinstance(message, framing.SyncStep1):
                self._on_sync_step1(peer, message.state_vector)
            elif isinstance(message, framing.SyncStep2 | framing.SyncUpdate):
                self._on_update(peer, message.update)
            elif isinstance(message, framing.Awareness):
                self._on_awareness(peer, message.payload)
            elif isinstance(message, framing.QueryAwareness) and self._awareness_gate.ask(peer.id):
                self._send_presence(peer)
            elif isinstance(message, framing.SavedRequest):
                peer.opted_in = True
                self.outbox.after_commit(peer, framing.saved(message.counter))
            elif isinstance(message, framing.ChatRequest):
                peer.opted_in = True  # a request is a hello too, like a "saved" request
                peer.requests.submit(read_request(message.body, self.request_cap))
        except MalformedInput as exc:
            raise HostileInput(exc.reason) from None

    def _on_sync_step1(self, peer: Peer, state_vector: bytes) -> None:
        scan_state_vector(state_vector, self.limits)
        bucket = self._sync_requests.get(peer.id)
        if bucket is None:
            bucket = self._sync_requests[peer.id] = Bucket(SYNC_REQUEST_RATE, SYNC_REQUEST_BURST)
        if not bucket.try_take():
            raise Overloaded("too many sync requests")
        # Computed now, sent once the state it contains is committed. The first one a peer
        # asks for is its initial sync (the whole doc for a new client): judged apart from the
        # backlog rule, so a doc larger than the outbound queue still opens.
        reply = framing.sync_step2(self.replica.diff(state_vector))
        self.outbox.after_commit(peer, reply, initial=True)

    def _on_update(self, peer: Peer, update: bytes) -> None:
        info = scan_update(update, self.limits)
        if info.is_empty:
            return
        if self.readonly or peer.readonly:
            self._refuse_write(peer, info)
            return
        if self.size + len(update) > self.settings.max_doc_size:
            raise DocTooLarge()
        delta = self.replica.check(info)
        if delta.pending_total > self.settings.max_pending_structs:
            # yrs would keep these forever and retry them on every apply. Close the sender and
            # rebuild the Doc from the store, which holds only integrated (emitted) updates:
            # that drops whatever pending state earlier updates left behind.
            self.schedule_heal()
            raise Overloaded("too many updates with missing dependencies")
        try:
            emitted, seconds = self.replica.apply(update, delta, origin=peer.id)
        except HostileInput as exc:
            log.warning(
                "update from peer %s refused by yrs in %s: %r",
                peer.id,
                self.key,
                exc.__cause__,
                extra={**logs.doc_fields(self.key), "peer": peer.id},
            )
            self.schedule_heal()
            raise
        self.hooks.update_applied(seconds)
        deleted = sum(length for _, _, length in info.deletes) if info.deletes else 0
        first = self.journal.recorded + 1
        self.journal.record(emitted, deleted)
        self.hooks.doc_changed(self.key)
        for seq, update_out in enumerate(emitted, start=first):
            self._outbox.append(Delivery(seq, framing.sync_update(update_out), exclude=peer.id))

    def _refuse_write(self, peer: Peer, info: UpdateInfo) -> None:
        """Read-only peers are never closed for writing. An update that adds nothing (an echo:
        pycrdt's Provider echoes every remote update) is dropped; others get one denial each."""
        if self.replica.adds_nothing(info):
            return
        self.refused_writes += 1
        first = not peer.denied_once
        if first:
            peer.denied_once = True
            peer.send(framing.permission_denied("read-only document"))
        self.hooks.write_refused(self.key, peer, first)

    # -- server-authored changes (the chat doc) ------------------------------------------

    async def author(self, change: Callable[[Doc[Any]], None]) -> asyncio.Future[None]:
        """Apply a change the server itself makes (``chat``: no client may write it) and
        relay it to every peer once committed. Returns the future of that commit: what the
        caller answers after awaiting it is durable, with every change before it (it raises
        RoomFailed if the doc cannot promise that). Changes are recorded in call order."""
        await self.until_usable()
        return self.author_now(change)

    def author_now(self, change: Callable[[Doc[Any]], None]) -> asyncio.Future[None]:
        """``author`` for a caller that may not wait (inside a store transaction): RoomFailed
        at once when the doc is failed or being rebuilt."""
        if self.failed is not None:
            raise self.failed if isinstance(self.failed, Refusal) else RoomFailed()
        if self._healing is not None:
            raise RoomFailed()
        emitted, deleted = self.replica.author(change, origin="server")
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if not emitted:
            # Nothing new, but an earlier change (a replayed post) may still be committing.
            if self.journal.committed < self.journal.recorded:
                self.outbox.waiters.append((self.journal.recorded, waiter))
            else:
                waiter.set_result(None)
            return waiter
        first = self.journal.recorded + 1
        upto = self.journal.record(emitted, deleted)
        for seq, update in enumerate(emitted, start=first):
            self._outbox.append(Delivery(seq, framing.sync_update(update)))
        self.outbox.waiters.append((upto, waiter))
        return waiter

    # -- healing ---------------------------------------------------------------------------

    def schedule_heal(self) -> None:
        """Rebuild the Doc from the store: yrs may have left it half-applied or poisoned.
        Other peers' messages wait (``until_usable`` awaits ``_healing``) rather than fail."""
        if self._healing is None:
            healing = self._healing = asyncio.Event()
            asyncio.get_running_loop().create_task(self._heal(healing), context=logs.detached())

    async def _heal(self, healing: asyncio.Event) -> None:
        self.hooks.rebuilt()
        try:
            await self.journal.flush()
            stored = await self.journal.store.load(self.key)
            await self.replica.rebuild(stored, self.journal.uncommitted, reindex=False)
            self.journal.adopt(stored)
            log.warning("rebuilt %s from the store", self.key, extra=logs.doc_fields(self.key))
            if self.nodes is not None:
                self._healing = None  # before resume, which may start another rebuild
                healing.set()
                self.nodes.resume()
        except BaseException as exc:
            if must_propagate(exc):
                raise
            log.exception("could not rebuild %s", self.key, extra=logs.doc_fields(self.key))
            self._fail(exc)
        finally:
            healing.set()
            if self._healing is healing:
                self._healing = None

    def fail(self, exc: BaseException) -> None:
        """Give the doc up (a chat write shown in it was rolled back): peers closed 1011."""
        if self.failed is None:
            self._fail(exc)

    def _fail(self, exc: BaseException) -> None:
        """The doc can no longer promise durability: close its peers; the registry drops it."""
        self.failed = self.failed or exc  # a refusal set by on_gone (4404 / 4409) stays
        self.journal.halt()
        self.outbox.fail()
        self.close_all(*failure_close(exc))

    # -- presence --------------------------------------------------------------------------

    def _on_awareness(self, peer: Peer, payload: bytes) -> None:
        entries = scan_awareness(payload, self.limits)  # garbage closes the sender, always
        now = self._awareness_gate.offer(peer.id, entries)
        if now:
            self._apply_awareness(peer, now)

    def _release_awareness(self, peer_id: int, entries: list[AwarenessEntry]) -> None:
        peer = self.peers.get(peer_id)
        if peer is not None and peer.takes_input:  # not once the server closed it
            self._apply_awareness(peer, entries)

    def _apply_awareness(self, peer: Peer, entries: list[AwarenessEntry]) -> None:
        changed = self.presence.apply(peer.id, peer.presence_owner, entries, peer.principal)
        if changed:  # to the sender too: see collab.sync.presence (a lone client's keep-alive)
            self.broadcast(framing.awareness(encode_awareness(changed)))
            self.typing_sweep.arm()

    def _broadcast_presence(self, entries: list[AwarenessEntry]) -> None:
        """The server's own awareness changes (cleared typing): to every peer."""
        self.broadcast(framing.awareness(encode_awareness(entries)))

    def _on_committed(self, upto: int) -> None:
        self.outbox.release(upto)

    async def compact(self) -> None:
        if self.failed is None:
            await self.journal.compact()

    async def flush(self) -> None:
        """Wait until everything applied so far is committed."""
        await self.journal.flush()
