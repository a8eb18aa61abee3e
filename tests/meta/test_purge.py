"""The purge (issue 8, item 10): used or ended invites, dead sessions and tickets, expired
cache entries and old audit rows go; everything still alive stays. Webhook deliveries left
pending for a deleted endpoint end."""

from __future__ import annotations

import pytest

from collab.meta import Attempt, AuditEvent, Endpoint, Health, MetaStore, Purged, Role
from collab.meta.memory import MemoryMetaStore
from collab.meta.memory.webhooks import put_deliveries
from collab.meta.sql import SqlMetaStore
from collab.meta.sql.webhooks import _enqueue as enqueue_rows
from collab.meta.webhooks import Delivery, DeliveryState, deliveries_for
from tests.meta.support import T0, Clock

pytestmark = pytest.mark.anyio


async def test_purge_deletes_only_what_is_dead(meta: MetaStore, clock: Clock) -> None:
    await meta.create_room("r", "R", "a")
    _, used = await meta.create_invite("r", Role.viewer, "a", ttl=600)
    await meta.redeem_invite(used, "b")
    revoked, _ = await meta.create_invite("r", Role.viewer, "a", ttl=600)
    await meta.close_invite(revoked.id, "revoked")
    await meta.create_invite("r", Role.viewer, "a", ttl=5)  # expires
    live_invite, live_code = await meta.create_invite("r", Role.viewer, "a", ttl=600)
    await meta.create_session("a", ttl=5)  # expires
    gone, _ = await meta.create_session("a", ttl=600)
    await meta.revoke_session(gone.id)
    _, live_session = await meta.create_session("a", ttl=600)
    used_ticket = await meta.create_ticket("a", "r", None, None, ttl=600)
    assert await meta.consume_ticket(used_ticket) is not None
    await meta.create_ticket("a", "r", None, None, ttl=5)  # expires
    live_ticket = await meta.create_ticket("a", "r", None, None, ttl=600)
    await meta.cache_set("old", "v", ttl=5)
    await meta.cache_set("new", "v", ttl=600)
    for i in range(5):
        await meta.record(AuditEvent(at=T0 + i, action="a", room_id="r", target=str(i)))
    clock.advance(10)

    purged = await meta.purge(audit_before=T0 + 3, batch=2)
    assert purged == Purged(invites=3, sessions=2, tickets=2, cache=1, audit=3)
    assert purged.total == 11
    assert [i.id for i in await meta.list_invites("r")] == [live_invite.id]
    assert await meta.get_session(live_session) is not None
    assert await meta.cache_get("new") == "v"
    assert [e.target for e in await meta.list_audit()] == ["4", "3"]
    # Nothing left to purge; keeping every audit row keeps them.
    assert await meta.purge(audit_before=None) == Purged()
    assert len(await meta.list_audit()) == 2
    # What survived still works.
    assert (await meta.redeem_invite(live_code, "c")).role == Role.viewer
    assert await meta.consume_ticket(live_ticket) is not None


async def test_audit_ids_are_never_reused_after_a_purge(meta: MetaStore, clock: Clock) -> None:
    for i in range(3):
        await meta.record(AuditEvent(at=T0 + i, action="a"))
    newest = (await meta.list_audit(limit=1))[0].id
    assert newest is not None
    await meta.purge(audit_before=T0 + 10)
    await meta.record(AuditEvent(at=T0 + 20, action="b"))
    after = (await meta.list_audit(limit=1))[0].id
    assert after is not None and after > newest


async def test_finished_webhook_deliveries_go_with_their_attempts(meta: MetaStore) -> None:
    """Deliveries delivered or given up before ``webhooks_before`` go, attempts first; pending
    ones (retrying, or redelivered) and recent ones stay. They were never purged before."""
    for name in ("e1", "e2", "e3"):
        url = f"https://{name}.example/hook"
        await meta.create_webhook(Endpoint(name, "r", url, ("*",), "whsec_x", "o", T0))
    made = await meta.enqueue_webhook_event("r", "x", "{}", T0, ["old", "recent", "pending"])
    assert [d.id for d in made] == ["old", "recent", "pending"]
    assert len(await meta.claim_webhook_deliveries(T0, "w", 30, 10)) == 3
    finishes: list[tuple[str, float, DeliveryState]] = [
        ("old", T0 + 1, "delivered"),
        ("recent", T0 + 5, "failed"),
        ("pending", T0 + 1, "pending"),
    ]
    for delivery_id, at, state in finishes:
        attempt = Attempt(delivery_id, 1, at, 0.1, status=500)
        await meta.record_webhook_attempt(attempt, state, T0 + 60, Health())

    kept = await meta.purge(audit_before=None)
    assert (kept.webhook_deliveries, kept.webhook_attempts) == (0, 0)  # no retention: all kept
    purged = await meta.purge(audit_before=None, webhooks_before=T0 + 3, batch=1)
    assert purged == Purged(webhook_deliveries=1, webhook_attempts=1) and purged.total == 2
    assert await meta.get_webhook_delivery("e1", "old") is None
    assert await meta.list_webhook_attempts("old") == []
    for endpoint_id, delivery_id in (("e2", "recent"), ("e3", "pending")):
        assert await meta.get_webhook_delivery(endpoint_id, delivery_id) is not None
        assert len(await meta.list_webhook_attempts(delivery_id)) == 1


async def enqueue_after_deletion(meta: MetaStore, stale: list[Endpoint]) -> list[Delivery]:
    """A delivery to each of ``stale`` (endpoints read before their deletion) inserted after
    the deletion committed: what a chat write racing an endpoint's deletion on PostgreSQL
    leaves (its enqueue runs in READ COMMITTED, collab.meta.sql.webhooks), written through
    each store's own enqueue step with the endpoint list it read."""
    if isinstance(meta, MemoryMetaStore):
        made = deliveries_for(stale, "message.posted", "{}", T0, iter(["late"]))
        put_deliveries(meta.tables, made)
        return made
    assert isinstance(meta, SqlMetaStore)
    ids = iter(["late"])
    return await meta.backend.write(
        lambda db: enqueue_rows(db, stale, "message.posted", "{}", T0, ids)
    )


async def test_a_delivery_enqueued_for_an_endpoint_deleted_meanwhile_ends(
    meta: MetaStore, clock: Clock
) -> None:
    """An enqueue that read the room's endpoints, then inserted after an endpoint's deletion
    (which failed the pending deliveries it saw): the late delivery was pending for an
    endpoint no claim takes, never finished, so never purged. The purge fails it (its
    retention then deletes it); a live endpoint's pending delivery is left alone."""
    for name in ("gone", "live"):
        url = f"https://{name}.example/hook"
        await meta.create_webhook(Endpoint(name, "r", url, ("*",), "whsec_x", "o", T0))
    await meta.enqueue_webhook_event("r", "x", "{}", T0, ["early", "waiting"])
    stale = [e for e in await meta.list_webhooks("r") if e.id == "gone"]
    assert await meta.delete_webhook("r", "gone", T0)
    assert [d.id for d in await enqueue_after_deletion(meta, stale)] == ["late"]
    late = await meta.get_webhook_delivery("gone", "late")
    assert late is not None and late.state == "pending"
    claimed = await meta.claim_webhook_deliveries(T0 + 1, "w", 30, 10)
    assert [d.id for d, _ in claimed] == ["waiting"]
    clock.advance(10)
    ended = await meta.purge(audit_before=None)
    assert ended == Purged(webhook_orphans=1) and ended.total == 1
    late = await meta.get_webhook_delivery("gone", "late")
    assert late is not None and late.state == "failed" and late.finished_at == T0 + 10
    assert await meta.next_webhook_due(T0 + 10) == T0 + 31  # the claim on "waiting" only
    assert (await meta.purge(audit_before=None)).total == 0
    purged = await meta.purge(audit_before=None, webhooks_before=T0 + 11)
    assert purged == Purged(webhook_deliveries=2)  # "early" (failed by the deletion), "late"
    assert await meta.get_webhook_delivery("gone", "late") is None
    waiting = await meta.get_webhook_delivery("live", "waiting")
    assert waiting is not None and waiting.state == "pending"


async def test_a_purge_in_small_batches_takes_every_finished_delivery(meta: MetaStore) -> None:
    """A batch smaller than a delivery with its attempts still takes one delivery (with all
    its attempts) and goes on: every finished delivery goes, none is left half-purged."""
    for name in ("e1", "e2", "e3"):
        url = f"https://{name}.example/hook"
        await meta.create_webhook(Endpoint(name, "r", url, ("*",), "whsec_x", "o", T0))
    await meta.enqueue_webhook_event("r", "x", "{}", T0, ["a", "b", "c"])
    for delivery, _ in await meta.claim_webhook_deliveries(T0, "w", 30, 10):
        attempt = Attempt(delivery.id, 1, T0 + 1, 0.1, status=200)
        await meta.record_webhook_attempt(attempt, "delivered", T0 + 1, Health())
    purged = await meta.purge(audit_before=None, webhooks_before=T0 + 2, batch=1)
    assert (purged.webhook_deliveries, purged.webhook_attempts) == (3, 3)
    for endpoint_id, delivery_id in (("e1", "a"), ("e2", "b"), ("e3", "c")):
        assert await meta.get_webhook_delivery(endpoint_id, delivery_id) is None
        assert await meta.list_webhook_attempts(delivery_id) == []
