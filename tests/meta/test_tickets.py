"""Tickets: single use, short-lived; of concurrent consumes exactly one wins."""

from __future__ import annotations

import anyio
import pytest

from collab.meta import Role, Ticket, Tickets
from tests.meta.support import T0, Clock

pytestmark = pytest.mark.anyio


async def test_ticket_is_single_use_and_expires(meta: Tickets, clock: Clock) -> None:
    secret = await meta.create_ticket("u1", "r", "notes", Role.viewer, ttl=30)
    assert await meta.consume_ticket(secret) == Ticket("u1", "r", "notes", Role.viewer, T0 + 30)
    assert await meta.consume_ticket(secret) is None
    assert await meta.consume_ticket("unknown") is None
    open_ticket = await meta.create_ticket("u1", "r", None, None, ttl=30)
    late = await meta.create_ticket("u1", "r", None, None, ttl=30)
    assert await meta.consume_ticket(open_ticket) == Ticket("u1", "r", None, None, T0 + 30)
    clock.advance(30)
    assert await meta.consume_ticket(late) is None


async def test_concurrent_consumes_exactly_one_wins(meta: Tickets) -> None:
    secret = await meta.create_ticket("u1", "r", None, Role.editor, ttl=30)
    results: list[Ticket | None] = []

    async def consume() -> None:
        results.append(await meta.consume_ticket(secret))

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            for _ in range(10):
                tg.start_soon(consume)
    assert len(results) == 10
    assert len([r for r in results if r is not None]) == 1
