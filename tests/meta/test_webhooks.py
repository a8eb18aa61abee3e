"""The outgoing webhooks' outbox: the contract every store keeps (claims, leases, attempts, and
an endpoint's deletion among the message writes that enqueue for it)."""

from __future__ import annotations

import functools
import itertools

import anyio
import pytest

from collab.meta import Attempt, Endpoint, Health, Message, MetaStore, NewMessage, WebhookOutbox
from tests.meta.support import T0, all_at_once

pytestmark = pytest.mark.anyio

_ids = itertools.count()


def ids(n: int = 10) -> list[str]:
    return [f"msg_{next(_ids)}" for _ in range(n)]


def endpoint(name: str, room: str = "r", events: tuple[str, ...] = ("*",)) -> Endpoint:
    created = T0 + next(_ids) / 1000  # in the order the test makes them
    return Endpoint(name, room, f"https://{name}.example/hook", events, "whsec_x", "o", created)


async def test_events_are_enqueued_for_matching_live_endpoints(meta: MetaStore) -> None:
    await meta.create_webhook(endpoint("all"))
    await meta.create_webhook(endpoint("posts", events=("message.posted",)))
    await meta.create_webhook(endpoint("members", events=("member.added",)))
    await meta.create_webhook(endpoint("other", room="elsewhere"))
    assert [e.id for e in await meta.list_webhooks("r")] == ["all", "posts", "members"]
    made = await meta.enqueue_webhook_event("r", "message.posted", '{"a":1}', T0, ids())
    assert sorted(d.endpoint_id for d in made) == ["all", "posts"]
    assert all(d.state == "pending" and d.due == T0 and d.payload == '{"a":1}' for d in made)
    assert await meta.get_webhook("elsewhere", "all") is None
    updated = await meta.update_webhook("r", "members", events=("*",), enable=False)
    assert updated is not None and updated.events == ("*",)
    assert len(await meta.enqueue_webhook_event("r", "doc.changed", "{}", T0, ids())) == 2
    assert await meta.delete_webhook("r", "members", T0)
    assert not await meta.delete_webhook("r", "members", T0)
    assert [e.id for e in await meta.list_webhooks("r")] == ["all", "posts"]
    gone = await meta.list_webhook_deliveries("members", 10)
    assert [d.state for d in gone] == ["failed"], "a deleted endpoint's deliveries fail"


async def test_claims_take_one_per_endpoint_and_respect_leases_and_the_breaker(
    meta: MetaStore,
) -> None:
    for name in ("a", "b", "c"):
        await meta.create_webhook(endpoint(name))
    first = await meta.enqueue_webhook_event("r", "e", "1", T0, ids())
    await meta.enqueue_webhook_event("r", "e", "2", T0 + 1, ids())
    claimed = await meta.claim_webhook_deliveries(T0 + 1, "w1", 30, 10)
    assert sorted(e.id for _, e in claimed) == ["a", "b", "c"]
    assert {d.id for d, _ in claimed} == {d.id for d in first}, "oldest due first"
    assert await meta.claim_webhook_deliveries(T0 + 2, "w2", 30, 10) == [], "one in flight each"
    # A claim whose worker died expires: the delivery is claimed again.
    again = await meta.claim_webhook_deliveries(T0 + 32, "w2", 30, 1)
    assert len(again) == 1 and again[0][0].id in {d.id for d in first}
    # Recording an attempt releases the claim and moves the delivery on.
    delivery, end = again[0]
    attempt = Attempt(delivery.id, 1, T0 + 33, 0.2, 500, "HTTP 500")
    opened = Health(failures=5, failing_since=T0, open_until=T0 + 100)
    await meta.record_webhook_attempt(attempt, "pending", T0 + 40, opened)
    assert (await meta.get_webhook("r", end.id)).health == opened  # type: ignore[union-attr]
    assert await meta.list_webhook_attempts(delivery.id) == [attempt]
    stored = await meta.get_webhook_delivery(end.id, delivery.id)
    assert stored is not None and stored.attempts == 1 and stored.due == T0 + 40
    # The open endpoint is skipped until open_until, then probed with one delivery.
    others = await meta.claim_webhook_deliveries(T0 + 70, "w3", 30, 10)
    assert end.id not in {e.id for _, e in others}
    probe = await meta.claim_webhook_deliveries(T0 + 100, "w3", 30, 10)
    assert [e.id for _, e in probe if e.id == end.id] == [end.id]


async def test_next_due_delivered_failed_and_redelivered(meta: MetaStore) -> None:
    await meta.create_webhook(endpoint("a"))
    assert await meta.next_webhook_due(T0) is None
    [delivery] = await meta.enqueue_webhook_event("r", "e", "{}", T0, ids())
    assert await meta.next_webhook_due(T0) == T0
    await meta.claim_webhook_deliveries(T0, "w", 30, 1)
    assert await meta.next_webhook_due(T0) == T0 + 30, "claimed: due when the lease ends"
    ok = Attempt(delivery.id, 1, T0 + 1, 0.1, 204)
    await meta.record_webhook_attempt(ok, "delivered", T0 + 1, Health())
    assert await meta.next_webhook_due(T0) is None
    done = await meta.get_webhook_delivery("a", delivery.id)
    assert done is not None and done.state == "delivered" and done.finished_at == T0 + 1
    again = await meta.redeliver_webhook("a", delivery.id, T0 + 50)
    assert again is not None and again.state == "pending" and again.window_start == T0 + 50
    assert await meta.redeliver_webhook("other", delivery.id, T0) is None
    [(claimed, _)] = await meta.claim_webhook_deliveries(T0 + 50, "w", 30, 1)
    assert claimed.attempts == 1
    disabled = Health(failures=9, failing_since=T0, disabled_at=T0 + 60, disabled_reason="x")
    await meta.record_webhook_attempt(
        Attempt(delivery.id, 2, T0 + 60, 5.0, None, "timeout"), "pending", T0 + 61, disabled
    )
    assert await meta.next_webhook_due(T0 + 61) is None, "a disabled endpoint waits"
    assert await meta.claim_webhook_deliveries(T0 + 99, "w", 30, 1) == []
    assert await meta.enqueue_webhook_event("r", "e", "{}", T0, ids()) == []
    enabled = await meta.update_webhook("r", "a", events=None, enable=True)
    assert enabled is not None and enabled.health == Health()
    assert len(await meta.claim_webhook_deliveries(T0 + 99, "w", 30, 1)) == 1
    listed = await meta.list_webhook_deliveries("a", 10)
    assert [d.id for d in listed] == [delivery.id]
    assert [a.n for a in await meta.list_webhook_attempts(delivery.id)] == [1, 2]


async def test_an_endpoint_deleted_among_chat_writes_is_never_sent_to(meta: MetaStore) -> None:
    """Message writes enqueue in their own transaction (``WebhookOutbox``): what they enqueued
    before an endpoint's deletion fails with it, and whatever races the deletion (on
    PostgreSQL a racing write may still commit one, pending) is never claimed nor due, and
    fails at the next purge."""
    await meta.create_webhook(endpoint("gone"))

    def events(message: Message, now: float) -> list[tuple[str, str]]:
        return [("message.posted", message.id)]

    async def post(n: int) -> None:
        new = NewMessage("r", f"m{n}", "u1", "U1", None, f"c{n}", "hi", T0)
        await meta.post_message(new, None, WebhookOutbox(events, lambda: T0, lambda: ids(1)[0]))

    await post(0)
    assert await meta.next_webhook_due(T0) == T0
    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:
            for n in range(1, 21):
                tg.start_soon(post, n)
                if n == 10:
                    tg.start_soon(meta.delete_webhook, "r", "gone", T0)
    found = await meta.list_webhook_deliveries("gone", 100)
    assert [d.state for d in found if d.payload == "m0"] == ["failed"]
    await post(21)  # after the deletion: nothing to enqueue for it
    assert "m21" not in {d.payload for d in await meta.list_webhook_deliveries("gone", 100)}
    assert await meta.claim_webhook_deliveries(T0 + 1, "w", 30, 10) == []
    assert await meta.next_webhook_due(T0 + 1) is None
    await meta.purge(audit_before=None)  # ends any left pending (collab.meta.purge)
    assert {d.state for d in await meta.list_webhook_deliveries("gone", 100)} == {"failed"}


async def test_a_redelivery_asked_while_an_attempt_is_in_flight_keeps_its_claim(
    meta: MetaStore,
) -> None:
    """Worker w1 claimed a delivery and is sending it when an owner asks for it again: the
    claim stands, so no other worker (node) sends it at the same time; once the claim lapsed,
    the delivery is claimed again (found in review: the request cleared the claim, and two
    sends of one delivery ran at once)."""
    await meta.create_webhook(endpoint("inflight"))
    [delivery] = await meta.enqueue_webhook_event("r", "message.posted", "{}", T0, ids(1))
    first = await meta.claim_webhook_deliveries(T0, "w1", 60.0, 16)
    assert [d.id for d, _ in first] == [delivery.id]
    assert await meta.redeliver_webhook("inflight", delivery.id, T0 + 1) is not None
    assert await meta.claim_webhook_deliveries(T0 + 1, "w2", 60.0, 16) == []
    later = await meta.claim_webhook_deliveries(T0 + 61, "w2", 60.0, 16)
    assert [d.id for d, _ in later] == [delivery.id]


async def test_a_room_made_again_with_a_deleted_rooms_id_inherits_none_of_its_webhooks(
    meta: MetaStore,
) -> None:
    """Room ids are names anyone may take again once free: Alice's room "r" had an endpoint
    and a pending delivery, then was deleted; Bob's new "r" lists no endpoint, and its events
    go to none of Alice's, nor does her pending delivery go out (found in review)."""
    await meta.create_room("r", "r", "alice")
    await meta.create_webhook(endpoint("alices"))
    await meta.enqueue_webhook_event("r", "message.posted", "{}", T0, ids(1))
    await meta.delete_room("r")
    await meta.create_room("r", "r", "bob")
    assert await meta.list_webhooks("r") == []
    assert await meta.enqueue_webhook_event("r", "message.posted", "{}", T0, ids(1)) == []
    assert await meta.claim_webhook_deliveries(T0 + 1, "w1", 60.0, 16) == []


async def test_registrations_past_max_endpoints_are_refused_in_their_own_step(
    meta: MetaStore,
) -> None:
    """Counted in the insert's step: of 12 registrations at once for a cap of 3, 3 are
    written. Deleted endpoints and other rooms' do not count; no cap without max_endpoints."""
    await meta.create_webhook(endpoint("gone"))
    assert await meta.delete_webhook("r", "gone", T0)
    assert await meta.create_webhook(endpoint("elsewhere", room="other"))
    made: list[bool] = []

    async def register(name: str) -> None:
        made.append(await meta.create_webhook(endpoint(name), max_endpoints=3))

    calls = [functools.partial(register, f"e{i}") for i in range(12)]
    assert await all_at_once(calls) == ["ok"] * 12
    assert sorted(made) == [False] * 9 + [True] * 3
    assert len(await meta.list_webhooks("r")) == 3
    assert not await meta.create_webhook(endpoint("more"), max_endpoints=3)
    assert await meta.create_webhook(endpoint("uncapped"))
    assert len(await meta.list_webhooks("r")) == 4


async def test_an_attempt_in_flight_when_its_endpoint_is_deleted_does_not_retry(
    meta: MetaStore,
) -> None:
    """A worker claimed a delivery and is sending it when its endpoint is deleted (which fails
    the delivery); the send fails and the worker records a retry: that made it pending again,
    for an endpoint no claim takes, so it was never finished nor purged. It stays failed."""
    for name in ("gone", "kept"):
        await meta.create_webhook(endpoint(name))
    made = await meta.enqueue_webhook_event("r", "e", "{}", T0, ids(2))
    claimed = await meta.claim_webhook_deliveries(T0, "w", 30, 10)
    assert len(claimed) == 2
    assert await meta.delete_webhook("r", "gone", T0 + 1)
    for delivery in made:
        attempt = Attempt(delivery.id, 1, T0 + 2, 5.0, None, "timeout")
        await meta.record_webhook_attempt(attempt, "pending", T0 + 60, Health(failures=1))
    gone, kept = [await meta.get_webhook_delivery(d.endpoint_id, d.id) for d in made]
    assert gone is not None and gone.state == "failed" and gone.finished_at == T0 + 2
    assert kept is not None and kept.state == "pending" and kept.due == T0 + 60
    assert [a.n for a in await meta.list_webhook_attempts(gone.id)] == [1]
    assert await meta.next_webhook_due(T0 + 2) == T0 + 60
    purged = await meta.purge(audit_before=None, webhooks_before=T0 + 3)
    assert (purged.webhook_orphans, purged.webhook_deliveries, purged.webhook_attempts) == (0, 1, 1)


async def test_a_claim_reads_one_row_per_endpoint_not_its_backlog(meta: MetaStore) -> None:
    """An endpoint back from an outage with thousands of pending deliveries: each claim used to
    check every due delivery against its endpoint's leases and fetch them all, holding the
    writer (SQLite) or the claim's transaction (PostgreSQL) for seconds per claim, one claim
    per delivery drained (3,000 pending: about 3 s each here). A generous bound: a stall, not
    a speed."""
    for name in ("back", "calm"):
        await meta.create_webhook(endpoint(name))
    backlog = 3000
    for i in range(backlog):
        await meta.enqueue_webhook_event("r", "e", "{}", T0 + i / 1000, ids(2))
    now = T0 + backlog
    with anyio.fail_after(1):
        first = await meta.claim_webhook_deliveries(now, "w", 30, 10)
    assert sorted(e.id for _, e in first) == ["back", "calm"]
    with anyio.fail_after(1):
        assert await meta.claim_webhook_deliveries(now, "w", 30, 10) == []  # both in flight
    for delivery, _ in first:
        attempt = Attempt(delivery.id, 1, now, 0.1, 200, None)
        await meta.record_webhook_attempt(attempt, "delivered", now, Health())
    with anyio.fail_after(1):
        second = await meta.claim_webhook_deliveries(now, "w", 30, 10)
    assert len(second) == 2 and {d.created_at for d, _ in second} == {T0 + 0.001}
