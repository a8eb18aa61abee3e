"""Outgoing webhooks in memory: endpoints, the outbox and its attempts.

``outbox_deliveries`` builds a message write's deliveries (``collab.meta.memory.messages``)
before that write changes anything, so an outbox that raises leaves nothing behind, as a
failed transaction does."""

from __future__ import annotations

from dataclasses import replace

from collab.meta.memory.base import MemoryKind, Tables
from collab.meta.messages import Message, WebhookOutbox
from collab.meta.webhooks import (
    Attempt,
    Delivery,
    DeliveryState,
    Endpoint,
    Health,
    deliveries_for,
)


def _live_endpoints(tables: Tables, room_id: str) -> list[Endpoint]:
    found = [e for e in tables.webhooks.values() if e.room_id == room_id]
    live = [e for e in found if e.health.disabled_at is None]
    return sorted(live, key=lambda e: (e.created_at, e.id))


def outbox_deliveries(tables: Tables, outbox: WebhookOutbox, message: Message) -> list[Delivery]:
    """``outbox``'s deliveries of ``message``, built but not stored (``put_deliveries``)."""
    endpoints = _live_endpoints(tables, message.room_id)
    if not endpoints:
        return []
    now = outbox.clock()
    ids = iter(outbox.new_id, None)
    made: list[Delivery] = []
    for event, payload in outbox.events(message, now):
        made += deliveries_for(endpoints, event, payload, now, ids)
    return made


def put_deliveries(tables: Tables, deliveries: list[Delivery]) -> None:
    for delivery in deliveries:
        tables.deliveries[delivery.id] = delivery


class MemoryWebhooks(MemoryKind):
    async def create_webhook(self, endpoint: Endpoint, *, max_endpoints: int | None = None) -> bool:
        # The count and the insert: no await between them, one step on the event loop.
        room = [e for e in self.tables.webhooks.values() if e.room_id == endpoint.room_id]
        if max_endpoints is not None and len(room) >= max_endpoints:
            return False
        self.tables.webhooks[endpoint.id] = endpoint
        return True

    async def get_webhook(self, room_id: str, endpoint_id: str) -> Endpoint | None:
        found = self.tables.webhooks.get(endpoint_id)
        return found if found is not None and found.room_id == room_id else None

    async def list_webhooks(self, room_id: str) -> list[Endpoint]:
        found = [e for e in self.tables.webhooks.values() if e.room_id == room_id]
        return sorted(found, key=lambda e: (e.created_at, e.id))

    async def update_webhook(
        self, room_id: str, endpoint_id: str, *, events: tuple[str, ...] | None, enable: bool
    ) -> Endpoint | None:
        found = await self.get_webhook(room_id, endpoint_id)
        if found is None:
            return None
        found = replace(found, events=events if events is not None else found.events)
        if enable:
            found = replace(found, health=Health())
        self.tables.webhooks[endpoint_id] = found
        return found

    async def delete_webhook(self, room_id: str, endpoint_id: str, now: float) -> bool:
        if await self.get_webhook(room_id, endpoint_id) is None:
            return False
        del self.tables.webhooks[endpoint_id]
        for delivery in list(self.tables.deliveries.values()):
            if delivery.endpoint_id == endpoint_id and delivery.state == "pending":
                self._put_delivery(replace(delivery, state="failed", finished_at=now))
        return True

    async def enqueue_webhook_event(
        self, room_id: str, event: str, payload: str, now: float, ids: list[str]
    ) -> list[Delivery]:
        endpoints = _live_endpoints(self.tables, room_id)
        made = deliveries_for(endpoints, event, payload, now, iter(ids))
        put_deliveries(self.tables, made)
        return made

    async def claim_webhook_deliveries(
        self, now: float, worker: str, lease: float, limit: int
    ) -> list[tuple[Delivery, Endpoint]]:
        claims = self.tables.delivery_claims
        busy = {
            self.tables.deliveries[d].endpoint_id
            for d, (_, until) in claims.items()
            if until > now and d in self.tables.deliveries
        }
        due = sorted(
            (d for d in self.tables.deliveries.values() if d.state == "pending" and d.due <= now),
            key=lambda d: (d.due, d.id),
        )
        found: list[tuple[Delivery, Endpoint]] = []
        for delivery in due:
            endpoint = self.tables.webhooks.get(delivery.endpoint_id)
            if endpoint is None or delivery.endpoint_id in busy or len(found) >= limit:
                continue
            health = endpoint.health
            if health.disabled_at is not None or (health.open_until or 0) > now:
                continue
            claims[delivery.id] = (worker, now + lease)
            busy.add(endpoint.id)
            found.append((delivery, endpoint))
        return found

    async def record_webhook_attempt(
        self, attempt: Attempt, state: DeliveryState, due: float, health: Health
    ) -> None:
        delivery = self.tables.deliveries.get(attempt.delivery_id)
        if delivery is None:
            return
        self.tables.attempts.setdefault(delivery.id, []).append(attempt)
        endpoint = self.tables.webhooks.get(delivery.endpoint_id)
        # Its endpoint deleted while the attempt was in flight: no retry (collab.meta.sql).
        ends: DeliveryState = "failed" if state == "pending" and endpoint is None else state
        finished = attempt.at if ends != "pending" else None
        attempts = max(delivery.attempts, attempt.n)
        self._put_delivery(
            replace(delivery, state=ends, due=due, attempts=attempts, finished_at=finished)
        )
        self.tables.delivery_claims.pop(delivery.id, None)
        if endpoint is not None:
            self.tables.webhooks[endpoint.id] = replace(endpoint, health=health)

    async def next_webhook_due(self, now: float) -> float | None:
        times = []
        for delivery in self.tables.deliveries.values():
            endpoint = self.tables.webhooks.get(delivery.endpoint_id)
            if delivery.state != "pending" or endpoint is None:
                continue
            if endpoint.health.disabled_at is not None:
                continue
            claim = self.tables.delivery_claims.get(delivery.id)
            times.append(
                max(delivery.due, endpoint.health.open_until or 0, claim[1] if claim else 0)
            )
        return min(times, default=None)

    async def list_webhook_deliveries(
        self,
        endpoint_id: str,
        limit: int,
        before: float | None = None,
        before_id: str | None = None,
    ) -> list[Delivery]:
        found = [
            d
            for d in self.tables.deliveries.values()
            if d.endpoint_id == endpoint_id
            and (
                before is None
                or d.created_at < before
                or (before_id is not None and d.created_at == before and d.id < before_id)
            )
        ]
        return sorted(found, key=lambda d: (d.created_at, d.id), reverse=True)[:limit]

    async def get_webhook_delivery(self, endpoint_id: str, delivery_id: str) -> Delivery | None:
        found = self.tables.deliveries.get(delivery_id)
        return found if found is not None and found.endpoint_id == endpoint_id else None

    async def list_webhook_attempts(self, delivery_id: str) -> list[Attempt]:
        return list(self.tables.attempts.get(delivery_id, []))

    async def redeliver_webhook(
        self, endpoint_id: str, delivery_id: str, now: float
    ) -> Delivery | None:
        found = await self.get_webhook_delivery(endpoint_id, delivery_id)
        if found is None:
            return None
        found = replace(found, state="pending", due=now, window_start=now, finished_at=None)
        self._put_delivery(found)
        return found

    def _put_delivery(self, delivery: Delivery) -> None:
        self.tables.deliveries[delivery.id] = delivery
