"""``Dispatcher``: the outbox's worker. It claims due deliveries, sends each (checked target,
signed body, 5 s at most), records the attempt and what follows from it (``policy``).

``run_forever`` is the server's loop: each attempt is its own task (at most
``policy.concurrency`` at once, and one per endpoint, by the claim), so an endpoint that hangs
holds one slot for ``timeout`` and, once its circuit opens, none. ``run_once`` claims and sends
what is due now and returns: tests drive it with their own clock. Every attempt's time comes
from ``clock``, its jitter from ``random``: both injectable.
"""

from __future__ import annotations

import logging
import ssl
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence

import anyio
import anyio.abc

import collab.webhooks.policy as rules
import collab.webhooks.signing as signing
from collab.meta import Attempt, Delivery, Endpoint, Message, WebhookOutbox, Webhooks
from collab.webhooks.events import payload
from collab.webhooks.policy import Policy
from collab.webhooks.sender import Outcome, send
from collab.webhooks.targets import Network, Resolver, TargetRefused, resolve, system_resolver

log = logging.getLogger("collab.webhooks")

POLL = 5.0  # the longest the worker sleeps without looking (another node may enqueue)
Sender = Callable[..., Awaitable[Outcome]]
Payloads = Sequence[tuple[str, str]]


def delivery_id() -> str:
    """A new delivery's id: its webhook-id header, the same on every attempt."""
    return f"msg_{uuid.uuid4().hex}"


class Dispatcher:
    def __init__(
        self,
        meta: Webhooks,
        *,
        policy: Policy | None = None,
        allow_http: bool = False,
        allowed: Sequence[Network] = (),
        clock: Callable[[], float] = time.time,
        random: Callable[[], float] = rules.random_jitter,
        resolver: Resolver = system_resolver,
        sender: Sender = send,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.meta = meta
        self.policy = policy or Policy()
        self.allow_http = allow_http
        self.allowed = list(allowed)
        self.clock = clock
        self.random = random
        self.resolver = resolver
        self.sender = sender
        self.ssl_context = ssl_context
        self.worker = uuid.uuid4().hex
        self._wake = anyio.Event()
        self._in_flight = 0

    async def enqueue(self, room_id: str, event: str, data: dict[str, object]) -> list[Delivery]:
        """One delivery per endpoint of the room that wants ``event``; durable when this returns."""
        now = self.clock()
        body = payload(event, room_id, now, data)
        ids = [delivery_id() for _ in range(64)]
        made = await self.meta.enqueue_webhook_event(room_id, event, body, now, ids)
        if made:
            self.wake()
        return made

    def outbox(self, events: Callable[[Message, float], Payloads]) -> WebhookOutbox:
        """``events`` (a message's (event, payload) pairs, stamped with the time given) for a
        message write's own transaction to enqueue (``collab.meta.WebhookOutbox``): at this
        worker's clock, named as ``enqueue`` names them, the worker woken once any is made."""
        return WebhookOutbox(events, self.clock, delivery_id, self._enqueued)

    def _enqueued(self, made: list[Delivery]) -> None:
        if made:
            self.wake()

    def wake(self) -> None:
        self._wake.set()

    async def run_once(self) -> int:
        """Claim what is due now and attempt it all, concurrently; how many were attempted."""
        claimed = await self.meta.claim_webhook_deliveries(
            self.clock(), self.worker, self.policy.lease, self.policy.concurrency
        )
        async with anyio.create_task_group() as tg:
            for delivery, endpoint in claimed:
                tg.start_soon(self.attempt, delivery, endpoint)
        return len(claimed)

    async def run_forever(self) -> None:
        async with anyio.create_task_group() as tg:
            while True:
                try:
                    if await self._claim_into(tg):
                        continue
                    idle = await self._idle_for()
                except Exception:  # the store failed: the outbox is still there, try again
                    log.exception("the webhook worker could not read the outbox")
                    idle = POLL
                with anyio.move_on_after(idle):
                    await self._wake.wait()

    async def _claim_into(self, tg: anyio.abc.TaskGroup) -> bool:
        """Start an attempt for every delivery claimed now; whether there was any."""
        self._wake = anyio.Event()
        free = self.policy.concurrency - self._in_flight
        if free <= 0:
            return False
        claimed = await self.meta.claim_webhook_deliveries(
            self.clock(), self.worker, self.policy.lease, free
        )
        for delivery, endpoint in claimed:
            self._in_flight += 1
            tg.start_soon(self._attempt_task, delivery, endpoint)
        return bool(claimed)

    async def _idle_for(self) -> float:
        now = self.clock()
        due = await self.meta.next_webhook_due(now)
        if due is None or due <= now:  # nothing, or blocked behind one in flight: its end wakes
            return POLL
        return min(POLL, due - now)

    async def _attempt_task(self, delivery: Delivery, endpoint: Endpoint) -> None:
        try:
            await self.attempt(delivery, endpoint)
        except Exception:  # the claim's lease runs out and the delivery is tried again
            log.exception("webhook delivery %s failed to record", delivery.id)
        finally:
            self._in_flight -= 1
            self.wake()

    async def attempt(self, delivery: Delivery, endpoint: Endpoint) -> Outcome:
        started = self.clock()
        # The attempt's cut (``policy.timeout``) counts from here: the name's resolution is in
        # it, so whoever runs the receiver's DNS cannot hold an attempt (and its slot) longer.
        deadline = anyio.current_time() + self.policy.timeout
        try:
            with anyio.fail_after(self.policy.timeout):
                target = await resolve(
                    endpoint.url,
                    allow_http=self.allow_http,
                    allowed=self.allowed,
                    resolver=self.resolver,
                )
        except TargetRefused as exc:
            outcome = Outcome(None, 0.0, exc.reason)
        except TimeoutError:
            outcome = Outcome(None, self.policy.timeout, "the name did not resolve in time")
        else:
            body = delivery.payload.encode()
            headers = signing.headers(endpoint.secret, delivery.id, int(started), body)
            outcome = await self.sender(
                target,
                headers,
                body,
                timeout=max(0.0, deadline - anyio.current_time()),
                max_read=self.policy.max_read,
                ssl_context=self.ssl_context,
            )
        now = self.clock()
        n = delivery.attempts + 1
        attempt = Attempt(delivery.id, n, started, outcome.latency, outcome.status, outcome.error)
        if outcome.error is None:
            await self.meta.record_webhook_attempt(attempt, "delivered", now, rules.after_success())
            return outcome
        health = rules.after_failure(self.policy, endpoint.health, now, outcome.error)
        if now - delivery.window_start >= self.policy.give_up_after:
            await self.meta.record_webhook_attempt(attempt, "failed", now, health)
        else:
            due = now + rules.retry_delay(self.policy, n, self.random)
            await self.meta.record_webhook_attempt(attempt, "pending", due, health)
        log.info(
            "webhook %s to endpoint %s failed (attempt %d): %s",
            delivery.id,
            endpoint.id,
            n,
            outcome.error,
            extra={"room": delivery.room_id},
        )
        return outcome
