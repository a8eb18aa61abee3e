"""A login whose profile (from the identity provider: name, email, picture, even its subject)
holds a NUL character signs in on every backend, and the user row reads back the same on each:
PostgreSQL's ``text`` cannot hold NUL, so every store keeps it as U+FFFD (what the search index
does with a message's NUL), instead of PostgreSQL alone failing the login, every time."""

from __future__ import annotations

import pytest

from collab.meta import MetaStore

pytestmark = pytest.mark.anyio


async def test_a_profile_with_nul_signs_in_and_reads_back_alike(meta: MetaStore) -> None:
    email, picture = "a\x00@example.com", "p\x00"
    first = await meta.upsert_oidc_user(
        "iss", "sub\x00", name="Ann\x00Lee", email=email, email_verified=False, picture=picture
    )
    again = await meta.upsert_oidc_user(
        "iss", "sub\x00", name="Ann\x00Lee 2", email=email, email_verified=False, picture=picture
    )
    assert again.id == first.id, "the same subject is the same user"
    stored = await meta.get_user(first.id)
    assert stored is not None
    assert (stored.subject, stored.name) == ("sub\ufffd", "Ann\ufffdLee 2")
    assert (stored.email, stored.picture) == ("a\ufffd@example.com", "p\ufffd")
    assert stored.handle
