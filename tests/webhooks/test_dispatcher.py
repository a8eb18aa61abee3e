"""Done 2 of issue 14, in process: the outbox's worker against receivers on loopback.

Signatures verify with the Standard Webhooks reference code; two 500s then a success; a
receiver that hangs is cut at 5 s; the circuit breaker opens after N failures and probes; the
other endpoints' latency does not move; a restart mid-backoff loses nothing; the one-day
give-up and disabling; a 302 is not followed; a name that resolves to loopback is refused at
the attempt. Backoff, breaker and give-up run on an injected clock: nothing waits for them.
"""

from __future__ import annotations

import itertools
import statistics
import time
import uuid
from pathlib import Path

import anyio
import pytest
from standardwebhooks import Webhook

from collab.db import migrate_with_backup
from collab.meta import Endpoint, MetaStore
from collab.meta.sqlite import SQLiteMetaStore
from collab.webhooks import Dispatcher, Policy, new_secret, parse_networks
from tests.meta.support import T0, Clock
from tests.support.receiver import Receiver

pytestmark = pytest.mark.anyio
LOOPBACK = parse_networks("127.0.0.1")


async def add_endpoint(
    meta: MetaStore, url: str, events: tuple[str, ...] = ("*",), room: str = "r"
) -> Endpoint:
    endpoint = Endpoint(uuid.uuid4().hex, room, url, events, new_secret(), "owner", time.time())
    await meta.create_webhook(endpoint)
    return endpoint


def dispatcher(meta: MetaStore, clock: Clock | None = None, **policy: float) -> Dispatcher:
    return Dispatcher(
        meta,
        policy=Policy(**policy),  # type: ignore[arg-type]
        allow_http=True,
        allowed=LOOPBACK,
        clock=clock or time.time,
        random=lambda: 1.0,  # the top of each backoff step: deterministic
    )


async def test_a_delivery_verifies_with_the_reference_code(meta: MetaStore) -> None:
    async with Receiver() as receiver:
        endpoint = await add_endpoint(meta, receiver.url())
        worker = dispatcher(meta)
        [delivery] = await worker.enqueue("r", "message.posted", {"message": {"text": "hé"}})
        assert await worker.run_once() == 1
        [got] = await receiver.wait_for(1)
    assert got.method == "POST" and got.path == "/hook"
    assert got.headers["content-type"] == "application/json"
    payload = Webhook(endpoint.secret).verify(got.body, got.headers)
    assert payload["type"] == "message.posted" and payload["data"]["room"] == "r"
    assert payload["data"]["message"]["text"] == "hé"
    assert got.headers["webhook-id"] == delivery.id
    with pytest.raises(Exception, match="signature"):
        Webhook(new_secret()).verify(got.body, got.headers)
    stored = await meta.get_webhook_delivery(endpoint.id, delivery.id)
    assert stored is not None and stored.state == "delivered" and stored.attempts == 1


async def test_two_500s_then_the_third_attempt_succeeds(meta: MetaStore) -> None:
    clock = Clock()
    async with Receiver([500, 500, 204]) as receiver:
        endpoint = await add_endpoint(meta, receiver.url())
        worker = dispatcher(meta, clock, retry_base=10)
        [delivery] = await worker.enqueue("r", "member.added", {"user": "u"})
        assert await worker.run_once() == 1
        assert await worker.run_once() == 0, "not before its backoff"
        due = await meta.next_webhook_due(clock.now)
        assert due == T0 + 10  # 10 s x 2^0, the top of its jitter
        clock.now = due
        assert await worker.run_once() == 1
        assert await meta.next_webhook_due(clock.now) == clock.now + 20
        clock.advance(20)
        assert await worker.run_once() == 1
        received = await receiver.wait_for(3)
    attempts = await meta.list_webhook_attempts(delivery.id)
    assert [(a.n, a.status, a.error is None) for a in attempts] == [
        (1, 500, False),
        (2, 500, False),
        (3, 204, True),
    ]
    assert {r.headers["webhook-id"] for r in received} == {delivery.id}
    assert [r.headers["webhook-timestamp"] for r in received] == [
        str(int(T0)),
        str(int(T0 + 10)),
        str(int(T0 + 30)),
    ]
    done = await meta.get_webhook_delivery(endpoint.id, delivery.id)
    assert done is not None and done.state == "delivered"
    healthy = await meta.get_webhook("r", endpoint.id)
    assert healthy is not None and healthy.health.failures == 0


async def test_a_receiver_that_hangs_is_cut_at_5_seconds(meta: MetaStore) -> None:
    async with Receiver(["hang"]) as receiver:
        endpoint = await add_endpoint(meta, receiver.url())
        worker = dispatcher(meta)
        assert worker.policy.timeout == 5.0
        [delivery] = await worker.enqueue("r", "doc.changed", {"doc": "d"})
        started = time.monotonic()
        with anyio.fail_after(10):
            await worker.run_once()
        elapsed = time.monotonic() - started
    assert 5.0 <= elapsed < 7.0
    [attempt] = await meta.list_webhook_attempts(delivery.id)
    assert attempt.status is None and attempt.error == "no answer within 5 s"
    assert 5.0 <= attempt.latency < 7.0
    stored = await meta.get_webhook_delivery(endpoint.id, delivery.id)
    assert stored is not None and stored.state == "pending"


async def test_the_breaker_opens_after_n_failures_then_probes(meta: MetaStore) -> None:
    clock = Clock()
    async with Receiver(default=503) as dead, Receiver() as alive:
        broken = await add_endpoint(meta, dead.url())
        fine = await add_endpoint(meta, alive.url())
        worker = dispatcher(meta, clock, retry_base=1, breaker_after=3, breaker_pause=60)
        for i in range(4):
            await worker.enqueue("r", "message.posted", {"i": i})
        for _ in range(3):  # one in flight per endpoint: one attempt of the dead one each round
            await worker.run_once()
            clock.advance(2)
        health = (await meta.get_webhook("r", broken.id)).health  # type: ignore[union-attr]
        assert health.failures == 3 and health.open_until == T0 + 4 + 60
        assert len(dead.received) == 3 and len(alive.received) == 3
        # Open: nothing goes to it, while the others go on.
        await worker.enqueue("r", "message.posted", {"i": 4})
        for _ in range(5):
            await worker.run_once()
            clock.advance(10)
        assert len(dead.received) == 3 and len(alive.received) == 5
        # Past open_until: one probe (it fails: open again, for twice as long)...
        clock.now = T0 + 4 + 60
        await worker.run_once()
        assert len(dead.received) == 4
        health = (await meta.get_webhook("r", broken.id)).health  # type: ignore[union-attr]
        assert health.failures == 4 and health.open_until == clock.now + 120
        # ...and once the endpoint answers again, a probe closes the circuit.
        dead.default = 204
        clock.now += 120
        await worker.run_once()
        health = (await meta.get_webhook("r", broken.id)).health  # type: ignore[union-attr]
        assert health.failures == 0 and health.open_until is None
        while await worker.run_once():  # the backlog drains, one per round
            clock.advance(3600)
        states = {d.state for d in await meta.list_webhook_deliveries(broken.id, 50)}
        assert states == {"delivered"}
    assert fine.id != broken.id


@pytest.mark.timing
async def test_a_dead_endpoint_costs_the_others_nothing(meta: MetaStore) -> None:
    """Latency of a healthy endpoint alone, then beside one that hangs (a slot held for the
    whole timeout) until its breaker opens, then with it open: medians within +100 ms."""
    async with Receiver(default="hang") as dead, Receiver() as alive:
        worker = dispatcher(meta, timeout=1.0, retry_base=0.2, breaker_after=2)
        await add_endpoint(meta, alive.url(), room="alone")
        await add_endpoint(meta, alive.url(), room="shared")
        broken = await add_endpoint(meta, dead.url(), room="shared")

        async def latency(room: str) -> float:
            before = len(alive.received)
            started = time.monotonic()
            await worker.enqueue(room, "message.posted", {})
            await alive.wait_for(before + 1)
            return alive.received[-1].at - started

        async def is_open() -> bool:
            found = await meta.get_webhook("shared", broken.id)
            return found is not None and found.health.open_until is not None

        async with anyio.create_task_group() as tg:
            tg.start_soon(worker.run_forever)
            with anyio.fail_after(30):
                baseline = [await latency("alone") for _ in range(10)]
                hanging = []
                while not await is_open():
                    hanging.append(await latency("shared"))
                    await anyio.sleep(0.05)  # the scenario: events keep coming, paced
                opened = [await latency("shared") for _ in range(10)]
            tg.cancel_scope.cancel()
    assert len(dead.received) == 2, "two attempts, then the breaker held the rest back"
    limit = statistics.median(baseline) + 0.1
    assert statistics.median(hanging) <= limit, (baseline, hanging)
    assert statistics.median(opened) <= limit, (baseline, opened)


async def test_a_restart_mid_backoff_loses_no_delivery(tmp_path: Path) -> None:
    clock = Clock()
    path = tmp_path / "restart.db"
    migrate_with_backup(path)
    async with Receiver([500]) as receiver:
        before = SQLiteMetaStore(path)
        await before.open()
        endpoint = await add_endpoint(before, receiver.url())
        worker = dispatcher(before, clock, retry_base=30)
        [delivery] = await worker.enqueue("r", "message.posted", {"n": 1})
        await worker.run_once()
        await before.close()  # the server stops mid-backoff
        after = SQLiteMetaStore(path)
        await after.open()
        try:
            restarted = dispatcher(after, clock, retry_base=30)
            assert await restarted.run_once() == 0
            clock.advance(30)
            assert await restarted.run_once() == 1
            stored = await after.get_webhook_delivery(endpoint.id, delivery.id)
            assert stored is not None and stored.state == "delivered" and stored.attempts == 2
        finally:
            await after.close()
        assert [r.headers["webhook-id"] for r in receiver.received] == [delivery.id] * 2


async def test_a_day_of_failures_gives_up_and_disables_the_endpoint(meta: MetaStore) -> None:
    clock = Clock()
    async with Receiver(default=500) as receiver:
        endpoint = await add_endpoint(meta, receiver.url())
        worker = dispatcher(meta, clock)
        [delivery] = await worker.enqueue("r", "message.posted", {})
        rounds = 0
        while (due := await meta.next_webhook_due(clock.now)) is not None and rounds < 200:
            clock.now = max(clock.now, due)
            await worker.run_once()
            rounds += 1
    stored = await meta.get_webhook_delivery(endpoint.id, delivery.id)
    assert stored is not None and stored.state == "failed"
    attempts = await meta.list_webhook_attempts(delivery.id)
    assert attempts[-1].at >= T0 + 24 * 3600 > attempts[-2].at
    assert 10 < len(attempts) < 60, "backed off, not hammered"
    gaps = [b.at - a.at for a, b in itertools.pairwise(attempts)]
    assert gaps[:4] == [5, 10, 20, 40] and max(gaps) <= 3600
    health = (await meta.get_webhook("r", endpoint.id)).health  # type: ignore[union-attr]
    assert health.disabled_at is not None and health.disabled_at >= T0 + 24 * 3600
    assert health.disabled_reason is not None
    assert health.disabled_reason.startswith("every attempt failed since 2023-11-14T22:13:20")
    assert "HTTP 500" in health.disabled_reason
    # Disabled: new events are not even enqueued for it.
    assert await worker.enqueue("r", "message.posted", {}) == []


async def test_a_redirect_is_not_followed(meta: MetaStore) -> None:
    async with Receiver() as elsewhere:
        async with Receiver([("redirect", elsewhere.url("/internal"))]) as receiver:
            endpoint = await add_endpoint(meta, receiver.url())
            worker = dispatcher(meta)
            [delivery] = await worker.enqueue("r", "message.posted", {})
            await worker.run_once()
            await receiver.wait_for(1)
        assert elsewhere.received == []
    [attempt] = await meta.list_webhook_attempts(delivery.id)
    assert attempt.status == 302 and attempt.error == "HTTP 302 (redirects are not followed)"
    assert endpoint.url.endswith("/hook")


async def test_a_name_resolving_to_loopback_is_refused_when_sent(meta: MetaStore) -> None:
    async with Receiver() as receiver:
        port = receiver.port
        endpoint = await add_endpoint(meta, f"http://rebound.example:{port}/hook")

        async def rebinding(host: str, port: int) -> list[str]:
            return ["127.0.0.1"]  # public when registered, loopback now

        worker = Dispatcher(meta, allow_http=True, allowed=[], resolver=rebinding)
        [delivery] = await worker.enqueue("r", "message.posted", {})
        await worker.run_once()
        assert receiver.received == []
        # With loopback allowed, the checked address is the one connected to (pinned).
        pinned = Dispatcher(meta, allow_http=True, allowed=LOOPBACK, resolver=rebinding)
        await meta.redeliver_webhook(endpoint.id, delivery.id, time.time())
        await pinned.run_once()
        [got] = await receiver.wait_for(1)
    assert got.headers["host"] == f"rebound.example:{port}"
    first = (await meta.list_webhook_attempts(delivery.id))[0]
    assert first.status is None and "127.0.0.1, not a public address" in (first.error or "")


async def test_two_nodes_never_claim_one_delivery(tmp_path: Path) -> None:
    """Two stores on one database (two `collab serve` nodes): their claims never overlap."""
    path = tmp_path / "shared.db"
    migrate_with_backup(path)
    nodes = [SQLiteMetaStore(path), SQLiteMetaStore(path)]
    for node in nodes:
        await node.open()
    try:
        for i in range(30):
            await add_endpoint(nodes[0], f"https://e{i}.example/")
        made = await nodes[0].enqueue_webhook_event(
            "r", "message.posted", "{}", time.time(), [f"msg_{i}" for i in range(30)]
        )
        claims: list[list[str]] = [[], []]

        async def claim(n: int) -> None:
            for _ in range(10):
                found = await nodes[n].claim_webhook_deliveries(time.time(), f"w{n}", 60, 2)
                claims[n] += [d.id for d, _ in found]

        async with anyio.create_task_group() as tg:
            tg.start_soon(claim, 0)
            tg.start_soon(claim, 1)
        assert not set(claims[0]) & set(claims[1])
        assert sorted(claims[0] + claims[1]) == sorted(d.id for d in made)
    finally:
        for node in nodes:
            await node.close()
