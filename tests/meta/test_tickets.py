"""Tickets: single use, short-lived; of concurrent consumes exactly one wins."""

from __future__ import annotations

import anyio
import pytest

from collab.meta import MetaStore, Role, Ticket, Tickets
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


async def test_a_ticket_lives_on_the_credential_that_minted_it(
    meta: MetaStore, clock: Clock
) -> None:
    session, _ = await meta.create_session("u1", ttl=600)
    by_session = await meta.create_ticket("u1", "r", None, None, ttl=30, session_id=session.id)
    found = await meta.consume_ticket(by_session)
    assert found == Ticket(
        "u1", "r", None, None, T0 + 30, session_id=session.id, session_expires_at=T0 + 600
    )
    # Minted by a session that has ended since: refused (and not spent).
    late = await meta.create_ticket("u1", "r", None, None, ttl=30, session_id=session.id)
    await meta.revoke_session(session.id)
    assert await meta.consume_ticket(late) is None
    short, _ = await meta.create_session("u1", ttl=10)
    expiring = await meta.create_ticket("u1", "r", None, None, ttl=30, session_id=short.id)
    clock.advance(10)
    assert await meta.consume_ticket(expiring) is None
    # Minted by a personal API token: refused once that token is revoked.
    api_token, _ = await meta.create_api_token("u1", "script")
    by_token = await meta.create_ticket("u1", "r", "d", None, ttl=30, api_token_id=api_token.id)
    kept = await meta.create_ticket("u1", "r", "d", None, ttl=30, api_token_id=api_token.id)
    assert (await meta.consume_ticket(by_token)) == Ticket(
        "u1", "r", "d", None, T0 + 40, api_token_id=api_token.id
    )
    await meta.revoke_api_token(api_token.id, "u1")
    assert await meta.consume_ticket(kept) is None
