"""``WebhookService``: what the rest of the server tells the webhooks, and the worker's life.

The chat service's posts, edits and deletions enqueue their events in the message's own
transaction (``chat_outbox``: a ``collab.meta.WebhookOutbox`` for the message write, the
transactional outbox pattern): the message and its deliveries commit together, and the worker
is woken once they did. ``chat_event`` enqueues the same events in a transaction of their
own, for a caller with no message write to join. The API's audit step reports membership
changes (``audited``), enqueued after the change committed; the update path reports a changed
doc (``doc_changed``), delivered at most once per ``DEBOUNCE`` seconds per doc, after the
changes settle (held in memory until then: a restart meanwhile loses it). Each becomes one
delivery per interested endpoint in the outbox (a failure to enqueue those after their change
is logged, never the caller's error).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import logging
from typing import Any

import collab.webhooks.events as events
from collab import logs
from collab.meta import AuditEvent, Message, WebhookOutbox, Webhooks
from collab.names import is_reserved_doc
from collab.settings import Settings
from collab.webhooks.dispatcher import Dispatcher
from collab.webhooks.targets import parse_networks

log = logging.getLogger("collab.webhooks")

DEBOUNCE = 5.0


class WebhookService:
    def __init__(self, dispatcher: Dispatcher) -> None:
        self.dispatcher = dispatcher
        self._worker: asyncio.Task[None] | None = None
        # Changed docs -> when their event is due (in due order: the debounce is one length),
        # under one timer for the first: a doc waits at a dict entry's cost, not a task's
        # (1.4 KB) nor a timer's (0.8 KB).
        self._debounced: dict[tuple[str, str], float] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._enqueuing: set[asyncio.Task[None]] = set()  # doc changes on their way in
        self._stopped = False

    @classmethod
    def create(cls, meta: Webhooks, settings: Settings) -> WebhookService:
        allowed = parse_networks(settings.webhook_allow_networks)
        return cls(Dispatcher(meta, allow_http=settings.webhook_allow_http, allowed=allowed))

    def start(self) -> None:
        self._worker = asyncio.get_running_loop().create_task(self.dispatcher.run_forever())

    async def stop(self) -> None:
        """Shutdown: doc changes still inside their debounce are enqueued now (the outbox is
        durable: they go out after a restart), those on their way in are waited for, then
        the worker stops. Later doc changes are not reported."""
        self._stopped = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._debounced:
            pending, self._debounced = list(self._debounced), {}
            self._track(asyncio.get_running_loop().create_task(self._enqueue_changes(pending)))
        if self._enqueuing:
            await asyncio.wait(set(self._enqueuing))
        tasks = [self._worker] if self._worker is not None else []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def chat_outbox(self, event: str) -> WebhookOutbox:
        """A message write's ``event`` (``message.posted``, ``.edited``, ``.deleted``) and its
        mention, for the write's own transaction to enqueue (``events.chat_payloads``)."""
        return self.dispatcher.outbox(functools.partial(events.chat_payloads, event))

    async def chat_event(self, event: str, room_id: str, message: Message) -> None:
        """The same events as ``chat_outbox``'s, enqueued in a transaction of their own."""
        for kind, data in events.chat_events(event, message):
            await self._enqueue(room_id, kind, data)

    async def audited(self, event: AuditEvent) -> None:
        kind = events.MEMBER_ACTIONS.get(event.action)
        if kind is None or event.room_id is None or event.target is None:
            return
        data = {"user": event.target, "by": event.actor}
        if "role" in event.detail:
            data["role"] = event.detail["role"]
        await self._enqueue(event.room_id, kind, data)

    def doc_changed(self, room_id: str, doc: str) -> None:
        key = (room_id, doc)
        if is_reserved_doc(doc) or self._stopped:
            return
        if key not in self._debounced:
            loop = asyncio.get_running_loop()
            self._debounced[key] = loop.time() + DEBOUNCE
            if self._timer is None:
                self._timer = loop.call_later(DEBOUNCE, self._settle, context=logs.detached())

    def _settle(self) -> None:
        """The first debounce is over: enqueue every doc change now due, in one task."""
        loop = asyncio.get_running_loop()
        self._timer = None
        soon = loop.time() + 0.01  # a timer may fire a little early
        due = list(itertools.takewhile(lambda key: self._debounced[key] <= soon, self._debounced))
        for key in due:
            del self._debounced[key]
        if self._debounced:
            first = next(iter(self._debounced.values()))
            self._timer = loop.call_at(first, self._settle, context=logs.detached())
        if due:
            self._track(loop.create_task(self._enqueue_changes(due)))

    def _track(self, task: asyncio.Task[None]) -> None:
        self._enqueuing.add(task)
        task.add_done_callback(self._enqueuing.discard)

    async def _enqueue_changes(self, keys: list[tuple[str, str]]) -> None:
        for room_id, doc in keys:
            await self._enqueue(room_id, events.DOC_CHANGED, {"doc": doc})

    async def settled(self) -> None:
        """Wait until every doc change reported so far is enqueued (its debounce over)."""
        while self._debounced or self._enqueuing:
            if self._enqueuing:
                await asyncio.wait(set(self._enqueuing))
            else:
                await asyncio.sleep(min(DEBOUNCE, 0.05))

    async def _enqueue(self, room_id: str, event: str, data: dict[str, Any]) -> None:
        try:
            await self.dispatcher.enqueue(room_id, event, data)
        except Exception:
            log.exception("could not enqueue the webhook event %s", event, extra={"room": room_id})
