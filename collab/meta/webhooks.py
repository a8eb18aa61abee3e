"""Outgoing webhooks: per-room endpoints, and the durable outbox of their deliveries.

An event is enqueued as one delivery per matching endpoint, in one step: its own
(``enqueue_webhook_event``), or the step of the chat write it reports (a message write's
``collab.meta.messages.WebhookOutbox``: the message and its deliveries commit together).
Workers claim due deliveries (a lease: a claim that outlives its worker expires and the
delivery is claimed again), at most one in flight per endpoint, never for an endpoint whose
circuit is open (``open_until``) or that is disabled. Each attempt is recorded with the
delivery's next state and the endpoint's health in one step (``record_webhook_attempt``), so a
restart finds every delivery where it was: pending (due when its backoff ends), delivered or
failed. On SQLite the claim is one IMMEDIATE transaction on the one writer; a PostgreSQL store would
claim with ``FOR UPDATE SKIP LOCKED``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal, Protocol

DeliveryState = Literal["pending", "delivered", "failed"]


@dataclass(frozen=True)
class Health:
    """An endpoint's recent record: the circuit breaker's and the give-up's input."""

    failures: int = 0  # consecutive failed attempts
    failing_since: float | None = None  # the first of them
    open_until: float | None = None  # the breaker: no delivery is claimed before then
    disabled_at: float | None = None  # a day of failures (or never re-enabled since)
    disabled_reason: str | None = None


@dataclass(frozen=True)
class Endpoint:
    id: str
    room_id: str
    url: str
    events: tuple[str, ...]
    secret: str
    created_by: str
    created_at: float
    health: Health = Health()


@dataclass(frozen=True)
class Delivery:
    id: str  # the webhook-id header, the same on every attempt
    endpoint_id: str
    room_id: str
    event: str
    payload: str
    created_at: float
    window_start: float
    due: float
    attempts: int = 0
    state: DeliveryState = "pending"
    finished_at: float | None = None


@dataclass(frozen=True)
class Attempt:
    delivery_id: str
    n: int  # 1, 2, ...
    at: float
    latency: float
    status: int | None = None  # the answer's HTTP status; None: no answer
    error: str | None = None  # why it failed (never the answer's body)


class Webhooks(Protocol):
    async def create_webhook(self, endpoint: Endpoint, *, max_endpoints: int | None = None) -> bool:
        """Register it; with ``max_endpoints``, only while the room has fewer (not deleted),
        counted in the insert's own step, so registrations racing each other (on several
        nodes too) cannot together pass the cap. False when it was not written."""

    async def get_webhook(self, room_id: str, endpoint_id: str) -> Endpoint | None:
        """The room's endpoint (not deleted)."""

    async def list_webhooks(self, room_id: str) -> list[Endpoint]:
        """The room's endpoints, oldest first."""

    async def update_webhook(
        self, room_id: str, endpoint_id: str, *, events: tuple[str, ...] | None, enable: bool
    ) -> Endpoint | None:
        """Change its events; ``enable`` clears its health (a disabled endpoint resumes)."""

    async def delete_webhook(self, room_id: str, endpoint_id: str, now: float) -> bool:
        """Delete it; its pending deliveries fail (one a racing enqueue leaves pending fails at
        the next purge: ``collab.meta.purge``). False when there is no such endpoint."""

    async def enqueue_webhook_event(
        self, room_id: str, event: str, payload: str, now: float, ids: list[str]
    ) -> list[Delivery]:
        """One pending delivery per live endpoint of the room whose events include ``event``
        (or ``*``), due now, named by the next of ``ids``."""

    async def claim_webhook_deliveries(
        self, now: float, worker: str, lease: float, limit: int
    ) -> list[tuple[Delivery, Endpoint]]:
        """Due deliveries for ``worker`` to send until ``now + lease``, oldest due first, at
        most one per endpoint and none of an endpoint with one in flight, open or disabled."""

    async def record_webhook_attempt(
        self, attempt: Attempt, state: DeliveryState, due: float, health: Health
    ) -> None:
        """Record the attempt, the delivery's new state (and due, when pending), its
        endpoint's new health, and release the claim, in one step. A delivery whose endpoint
        was deleted meanwhile is not retried: ``pending`` is recorded as ``failed``."""

    async def next_webhook_due(self, now: float) -> float | None:
        """The earliest time a delivery could be claimed (None: nothing pending)."""

    async def list_webhook_deliveries(
        self,
        endpoint_id: str,
        limit: int,
        before: float | None = None,
        before_id: str | None = None,
    ) -> list[Delivery]:
        """The endpoint's deliveries, newest first: by ``created_at``, then ``id``, both
        descending. A page: those after (``before``, ``before_id``), the last one listed, in
        that order (one write may make several at one instant: a post's ``message.posted`` and
        its ``mention``); without ``before_id``, those created before ``before``."""

    async def get_webhook_delivery(self, endpoint_id: str, delivery_id: str) -> Delivery | None: ...

    async def list_webhook_attempts(self, delivery_id: str) -> list[Attempt]:
        """The delivery's attempts, first first."""

    async def redeliver_webhook(
        self, endpoint_id: str, delivery_id: str, now: float
    ) -> Delivery | None:
        """Send it again (pending, due now, a new day of retries), whatever its state."""


def deliveries_for(
    endpoints: list[Endpoint], event: str, payload: str, now: float, ids: Iterator[str]
) -> list[Delivery]:
    """One pending delivery of ``event``, due ``now``, per endpoint of ``endpoints`` that
    wants it (its events include it, or ``*``), each named by the next of ``ids`` (no more
    deliveries than ids): the rule every store's enqueue follows."""
    made: list[Delivery] = []
    for endpoint in endpoints:
        if event not in endpoint.events and "*" not in endpoint.events:
            continue
        delivery_id = next(ids, None)
        if delivery_id is None:
            break
        room_id = endpoint.room_id
        made.append(Delivery(delivery_id, endpoint.id, room_id, event, payload, now, now, now))
    return made
