"""Personal API tokens: found by secret (stamping last use), listed, revoked by their owner only."""

from __future__ import annotations

import pytest

from collab.meta import ApiTokens, digest
from tests.meta.support import T0, Clock

pytestmark = pytest.mark.anyio


async def test_api_token_lifecycle(meta: ApiTokens, clock: Clock) -> None:
    token, secret = await meta.create_api_token("u1", "laptop")
    assert len(token.id) == 32 and token.id != secret
    assert (token.user_id, token.name, token.created_at, token.revoked, token.last_used_at) == (
        "u1",
        "laptop",
        T0,
        False,
        None,
    )
    clock.advance(30)
    found = await meta.find_api_token(secret)
    assert found is not None and found.id == token.id and found.last_used_at == T0 + 30
    assert await meta.find_api_token("unknown") is None
    assert await meta.find_api_token(digest(secret)) is None
    other, _ = await meta.create_api_token("u2", "other")
    assert [t.id for t in await meta.list_api_tokens("u1")] == [token.id]
    assert (await meta.list_api_tokens("u1"))[0].last_used_at == T0 + 30, "the stamp is stored"
    await meta.revoke_api_token(token.id, "u2")  # not u2's token: no effect
    assert await meta.find_api_token(secret) is not None
    await meta.revoke_api_token(token.id, "u1")
    assert await meta.find_api_token(secret) is None
    listed = await meta.list_api_tokens("u1")
    assert [(t.id, t.revoked) for t in listed] == [(token.id, True)]
    assert [t.id for t in await meta.list_api_tokens("u2")] == [other.id]
