"""One contract, every MetaStore backend (memory and SQLite), with an injected clock."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest

from collab.errors import Conflict, NotFound
from collab.meta import MetaStore, open_meta_store
from collab.meta.base import AuditEvent, Member, Role, Ticket, digest
from collab.meta.memory import MemoryMetaStore
from collab.meta.sqlite import SQLiteMetaStore
from collab.names import DocKey
from collab.store import StoreError, open_store
from collab.store.sqlite import migrate_with_backup

pytestmark = pytest.mark.anyio

T0 = 1_700_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(params=["memory", "sqlite"])
async def meta(
    request: pytest.FixtureRequest, tmp_path: Path, clock: Clock
) -> AsyncIterator[MetaStore]:
    store: MetaStore
    if request.param == "memory":
        store = MemoryMetaStore(clock=clock)
    else:
        migrate_with_backup(tmp_path / "c.db")
        store = SQLiteMetaStore(tmp_path / "c.db", clock=clock)
    await store.open()
    yield store
    await store.close()


async def _user(meta: MetaStore, subject: str = "alice", email: str | None = None) -> str:
    user = await meta.upsert_oidc_user(
        "https://idp", subject, name=subject, email=email, email_verified=True, picture=None
    )
    return user.id


# users


async def test_upsert_oidc_user_creates_then_updates_the_profile(
    meta: MetaStore, clock: Clock
) -> None:
    user = await meta.upsert_oidc_user(
        "https://idp", "sub-1", name="Ann", email="a@x.org", email_verified=False, picture=None
    )
    assert len(user.id) == 32 and int(user.id, 16) >= 0
    assert (user.issuer, user.subject, user.name) == ("https://idp", "sub-1", "Ann")
    assert user.email == "a@x.org"
    assert not user.email_verified and not user.disabled and user.created_at == T0
    clock.advance(60)
    again = await meta.upsert_oidc_user(
        "https://idp", "sub-1", name="Ann B", email="b@x.org", email_verified=True, picture="p.png"
    )
    assert again.id == user.id and again.created_at == T0
    assert (again.name, again.email, again.email_verified, again.picture) == (
        "Ann B",
        "b@x.org",
        True,
        "p.png",
    )
    assert await meta.get_user(user.id) == again
    other_issuer = await meta.upsert_oidc_user(
        "https://other", "sub-1", name="Ann", email=None, email_verified=False, picture=None
    )
    assert other_issuer.id != user.id
    assert [u.id for u in await meta.list_users()] == [user.id, other_issuer.id]
    assert await meta.get_user("nobody") is None


async def test_find_user_by_verified_email(meta: MetaStore, clock: Clock) -> None:
    first = await meta.upsert_oidc_user(
        "i", "1", name="a", email="Ann@Example.org", email_verified=True, picture=None
    )
    clock.advance(1)
    await meta.upsert_oidc_user(
        "i", "2", name="b", email="ann@example.org", email_verified=True, picture=None
    )
    await meta.upsert_oidc_user(
        "i", "3", name="c", email="bob@example.org", email_verified=False, picture=None
    )
    found = await meta.find_user_by_verified_email("ANN@example.ORG")
    assert found is not None and found.id == first.id, "case-insensitive; the oldest wins"
    assert await meta.find_user_by_verified_email("bob@example.org") is None, "unverified"
    assert await meta.find_user_by_verified_email("nobody@example.org") is None


async def test_set_user_disabled(meta: MetaStore) -> None:
    user_id = await _user(meta)
    await meta.set_user_disabled(user_id, True)
    assert (u := await meta.get_user(user_id)) is not None and u.disabled
    await meta.set_user_disabled(user_id, False)
    assert (u := await meta.get_user(user_id)) is not None and not u.disabled
    with pytest.raises(NotFound):
        await meta.set_user_disabled("nobody", True)


# sessions


async def test_session_lifecycle_and_expiry(meta: MetaStore, clock: Clock) -> None:
    session, secret = await meta.create_session("u1", ttl=3600)
    assert session.id == digest(secret) != secret
    assert (session.user_id, session.created_at, session.expires_at) == ("u1", T0, T0 + 3600)
    assert await meta.get_session(secret) == session
    assert await meta.get_session(session.id) is None, "the stored digest is not a credential"
    assert await meta.get_session("nope") is None
    clock.advance(3599)
    assert await meta.get_session(secret) == session
    clock.advance(1)
    assert await meta.get_session(secret) is None


async def test_revoke_sessions(meta: MetaStore, clock: Clock) -> None:
    one, one_secret = await meta.create_session("u1", ttl=100)
    two, two_secret = await meta.create_session("u1", ttl=1000)
    await meta.create_session("u1", ttl=10)
    other, other_secret = await meta.create_session("u2", ttl=100)
    await meta.revoke_session(one.id)
    assert await meta.get_session(one_secret) is None
    await meta.revoke_session("unknown")  # idempotent
    clock.advance(20)  # the ttl=10 one has expired: not live, so not reported
    assert await meta.revoke_user_sessions("u1") == [two.id]
    assert await meta.get_session(two_secret) is None
    assert await meta.get_session(other_secret) == other
    assert await meta.revoke_user_sessions("u1") == []


# rooms and members


async def test_create_room_makes_the_owner_atomically(meta: MetaStore, clock: Clock) -> None:
    room = await meta.create_room("r1", "Room one", "u1")
    assert (room.id, room.title, room.created_by, room.created_at, room.gc) == (
        "r1",
        "Room one",
        "u1",
        T0,
        True,
    )
    assert await meta.get_room("r1") == room
    assert await meta.get_member("r1", "u1") == Member("r1", "u1", Role.owner, T0)
    with pytest.raises(Conflict):
        await meta.create_room("r1", "Again", "u2")
    assert await meta.get_member("r1", "u2") is None
    assert (r := await meta.get_room("r1")) is not None and r.title == "Room one"
    assert await meta.get_room("nope") is None


async def test_rooms_for_a_user_and_counts(meta: MetaStore, clock: Clock) -> None:
    a = await meta.create_room("a", "A", "u1")
    clock.advance(1)
    b = await meta.create_room("b", "B", "u2")
    await meta.set_member("b", "u1", Role.viewer)
    assert await meta.list_rooms_for("u1") == [(a, Role.owner), (b, Role.viewer)]
    assert await meta.list_rooms_for("u3") == []
    assert await meta.count_rooms_created_by("u1") == 1
    assert await meta.count_rooms_created_by("u3") == 0
    await meta.rename_room("a", "A renamed")
    assert (r := await meta.get_room("a")) is not None and r.title == "A renamed"
    with pytest.raises(NotFound):
        await meta.rename_room("nope", "x")


async def test_set_member_upserts_and_keeps_added_at(meta: MetaStore, clock: Clock) -> None:
    await meta.create_room("r", "R", "u1")
    clock.advance(5)
    added = await meta.set_member("r", "u2", Role.editor)
    assert added == Member("r", "u2", Role.editor, T0 + 5)
    clock.advance(5)
    lowered = await meta.set_member("r", "u2", Role.viewer)
    assert lowered == Member("r", "u2", Role.viewer, T0 + 5), "set_member may lower a role"
    assert await meta.get_member("r", "u2") == lowered
    assert [m.user_id for m in await meta.list_members("r")] == ["u1", "u2"]
    await meta.remove_member("r", "u2")
    await meta.remove_member("r", "u2")  # idempotent
    assert await meta.get_member("r", "u2") is None
    assert await meta.list_members("r") == [Member("r", "u1", Role.owner, T0)]
    with pytest.raises(NotFound):
        await meta.set_member("nope", "u2", Role.viewer)


async def test_delete_room_deletes_its_members_invites_and_tickets(meta: MetaStore) -> None:
    await meta.create_room("r", "R", "u1")
    await meta.create_room("keep", "K", "u1")
    await meta.set_member("r", "u2", Role.editor)
    _, invite_secret = await meta.create_invite("r", Role.editor, "u1", ttl=60)
    _, kept_invite = await meta.create_invite("keep", Role.viewer, "u1", ttl=60)
    ticket_secret = await meta.create_ticket("u2", "r", None, None, ttl=30)
    await meta.delete_room("r")
    assert await meta.get_room("r") is None
    assert await meta.list_members("r") == []
    assert await meta.get_member("r", "u2") is None
    with pytest.raises(NotFound):
        await meta.redeem_invite(invite_secret, "u3")
    assert await meta.consume_ticket(ticket_secret) is None
    assert [r.id for r, _ in await meta.list_rooms_for("u1")] == ["keep"]
    # A room re-created under the same id starts clean.
    await meta.create_room("r", "R2", "u9")
    assert [m.user_id for m in await meta.list_members("r")] == ["u9"]
    assert (await meta.redeem_invite(kept_invite, "u3")).role == Role.viewer
    await meta.delete_room("never-existed")  # idempotent


# invites


async def test_invite_grants_a_role_once(meta: MetaStore, clock: Clock) -> None:
    await meta.create_room("r", "R", "u1")
    invite, secret = await meta.create_invite("r", Role.editor, "u1", ttl=60)
    assert len(invite.id) == 32 and invite.id != secret and invite.used_by is None
    assert (invite.room_id, invite.role, invite.created_by, invite.expires_at) == (
        "r",
        Role.editor,
        "u1",
        T0 + 60,
    )
    member = await meta.redeem_invite(secret, "u2")
    assert member == Member("r", "u2", Role.editor, T0)
    assert await meta.get_member("r", "u2") == member
    with pytest.raises(NotFound):
        await meta.redeem_invite(secret, "u3")
    with pytest.raises(NotFound):
        await meta.redeem_invite("unknown", "u3")
    with pytest.raises(NotFound):
        await meta.create_invite("nope", Role.viewer, "u1", ttl=60)


async def test_expired_invite_is_refused(meta: MetaStore, clock: Clock) -> None:
    await meta.create_room("r", "R", "u1")
    _, secret = await meta.create_invite("r", Role.viewer, "u1", ttl=60)
    clock.advance(60)
    with pytest.raises(NotFound):
        await meta.redeem_invite(secret, "u2")
    assert await meta.get_member("r", "u2") is None


async def test_redeeming_never_lowers_a_role(meta: MetaStore, clock: Clock) -> None:
    await meta.create_room("r", "R", "u1")
    await meta.set_member("r", "u2", Role.commenter)
    _, viewer_invite = await meta.create_invite("r", Role.viewer, "u1", ttl=60)
    _, editor_invite = await meta.create_invite("r", Role.editor, "u1", ttl=60)
    clock.advance(1)
    assert await meta.redeem_invite(viewer_invite, "u1") == Member("r", "u1", Role.owner, T0)
    with pytest.raises(NotFound):
        await meta.redeem_invite(viewer_invite, "u3")  # consumed all the same
    raised = await meta.redeem_invite(editor_invite, "u2")
    assert raised == Member("r", "u2", Role.editor, T0), "raised, added_at kept"


async def test_concurrent_redeems_exactly_one_wins(meta: MetaStore) -> None:
    await meta.create_room("r", "R", "u0")
    _, secret = await meta.create_invite("r", Role.editor, "u0", ttl=60)
    winners: list[Member] = []
    refused: list[str] = []

    async def redeem(user_id: str) -> None:
        try:
            winners.append(await meta.redeem_invite(secret, user_id))
        except NotFound:
            refused.append(user_id)

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            for i in range(10):
                tg.start_soon(redeem, f"u{i + 1}")
    assert len(winners) == 1 and len(refused) == 9
    assert {m.user_id for m in await meta.list_members("r")} == {"u0", winners[0].user_id}


# personal API tokens


async def test_api_token_lifecycle(meta: MetaStore, clock: Clock) -> None:
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


# tickets


async def test_ticket_is_single_use_and_expires(meta: MetaStore, clock: Clock) -> None:
    secret = await meta.create_ticket("u1", "r", "notes", Role.viewer, ttl=30)
    assert await meta.consume_ticket(secret) == Ticket("u1", "r", "notes", Role.viewer, T0 + 30)
    assert await meta.consume_ticket(secret) is None
    assert await meta.consume_ticket("unknown") is None
    open_ticket = await meta.create_ticket("u1", "r", None, None, ttl=30)
    late = await meta.create_ticket("u1", "r", None, None, ttl=30)
    assert await meta.consume_ticket(open_ticket) == Ticket("u1", "r", None, None, T0 + 30)
    clock.advance(30)
    assert await meta.consume_ticket(late) is None


async def test_concurrent_consumes_exactly_one_wins(meta: MetaStore) -> None:
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


# cache


async def test_cache_with_expiry(meta: MetaStore, clock: Clock) -> None:
    assert await meta.cache_get("k") is None
    await meta.cache_set("k", "v1", ttl=10)
    assert await meta.cache_get("k") == "v1"
    await meta.cache_set("k", "v2", ttl=20)
    assert await meta.cache_get("k") == "v2"
    clock.advance(20)
    assert await meta.cache_get("k") is None
    await meta.cache_set("k", "v3", ttl=5)
    assert await meta.cache_get("k") == "v3"
    await meta.cache_delete("k")
    await meta.cache_delete("k")  # idempotent
    assert await meta.cache_get("k") is None


# audit


async def test_audit_newest_first_with_room_filter_and_cursor(
    meta: MetaStore, clock: Clock
) -> None:
    for i in range(5):
        await meta.record(
            AuditEvent(
                at=T0 + i,
                action="member.role",
                actor="u1",
                room_id="r" if i % 2 == 0 else "other",
                target=f"u{i}",
                detail={"role": "editor", "n": i, "nested": {"ok": [1, 2]}},
                ip="10.0.0.1",
            )
        )
    events = await meta.list_audit()
    assert [e.target for e in events] == ["u4", "u3", "u2", "u1", "u0"]
    ids = [e.id for e in events]
    assert all(isinstance(i, int) for i in ids) and ids == sorted(ids, reverse=True)  # type: ignore[type-var]
    newest = events[0]
    assert (newest.at, newest.action, newest.actor, newest.room_id, newest.ip) == (
        T0 + 4,
        "member.role",
        "u1",
        "r",
        "10.0.0.1",
    )
    assert newest.detail == {"role": "editor", "n": 4, "nested": {"ok": [1, 2]}}
    assert [e.target for e in await meta.list_audit(room_id="r")] == ["u4", "u2", "u0"]
    page1 = await meta.list_audit(limit=2)
    assert [e.target for e in page1] == ["u4", "u3"]
    page2 = await meta.list_audit(limit=2, before_id=page1[-1].id)
    assert [e.target for e in page2] == ["u2", "u1"]
    roomed = await meta.list_audit(room_id="r", limit=5, before_id=page1[-1].id)
    assert [e.target for e in roomed] == ["u2", "u0"]
    assert await meta.list_audit(limit=0) == []
    await meta.record(AuditEvent(at=T0, action="login.failure"))
    bare = (await meta.list_audit(limit=1))[0]
    assert (bare.action, bare.actor, bare.room_id, bare.detail) == ("login.failure", None, None, {})


# SQLite only: the file itself


def _db_bytes(path: Path) -> bytes:
    return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*") if p.is_file())


async def test_sqlite_stores_digests_only(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    migrate_with_backup(path)
    meta = SQLiteMetaStore(path)
    await meta.open()
    await meta.create_room("r", "R", "u1")
    _, session_secret = await meta.create_session("u1", ttl=60)
    _, token_secret = await meta.create_api_token("u1", "t")
    _, invite_secret = await meta.create_invite("r", Role.viewer, "u1", ttl=60)
    ticket_secret = await meta.create_ticket("u1", "r", None, None, ttl=60)
    secrets = [session_secret, token_secret, invite_secret, ticket_secret]
    for when in ("open", "closed"):
        raw = _db_bytes(path)
        for secret in secrets:
            assert secret.encode() not in raw, f"a plain secret is in the database ({when})"
            assert digest(secret).encode() in raw, "the check reads the right bytes"
        await meta.close()


async def test_sqlite_persists_across_reopen(tmp_path: Path, clock: Clock) -> None:
    path = tmp_path / "c.db"
    migrate_with_backup(path)
    meta = SQLiteMetaStore(path, clock=clock)
    await meta.open()
    user_id = await _user(meta)
    await meta.create_room("r", "R", user_id)
    _, session_secret = await meta.create_session(user_id, ttl=60)
    await meta.cache_set("k", "v", ttl=60)
    await meta.record(AuditEvent(at=T0, action="room.create", actor=user_id, room_id="r"))
    await meta.close()

    again = SQLiteMetaStore(path, synchronous="NORMAL", clock=clock)
    await again.open()
    try:
        assert (u := await again.get_user(user_id)) is not None and u.name == "alice"
        room = await again.get_room("r")
        assert room is not None and room.created_by == user_id
        assert await again.list_rooms_for(user_id) == [(room, Role.owner)]
        assert (s := await again.get_session(session_secret)) is not None
        assert s.user_id == user_id
        assert await again.cache_get("k") == "v"
        assert [e.action for e in await again.list_audit()] == ["room.create"]
    finally:
        await again.close()


async def test_sqlite_purges_expired_cache_rows(tmp_path: Path, clock: Clock) -> None:
    path = tmp_path / "c.db"
    migrate_with_backup(path)
    meta = SQLiteMetaStore(path, clock=clock)
    await meta.open()
    await meta.cache_set("old", "v", ttl=1)
    clock.advance(2)
    await meta.cache_set("new", "v", ttl=60)
    await meta.close()
    with sqlite3.connect(path) as conn:
        assert [r[0] for r in conn.execute("SELECT key FROM cache")] == ["new"]


async def test_sqlite_refuses_pending_migrations_and_closed_use(tmp_path: Path) -> None:
    meta = SQLiteMetaStore(tmp_path / "fresh.db")
    with pytest.raises(StoreError, match="pending migrations"):
        await meta.open()
    migrate_with_backup(tmp_path / "fresh.db")
    await meta.open()
    await meta.close()
    with pytest.raises(StoreError, match="closed"):
        await meta.get_room("r")
    with pytest.raises(StoreError, match="closed"):
        await meta.create_room("r", "R", "u1")


async def test_one_store_url_names_documents_and_meta(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'data' / 'collab.db'}"
    migrate_with_backup(tmp_path / "data" / "collab.db")
    docs, meta = open_store(url), open_meta_store(url)
    assert isinstance(meta, SQLiteMetaStore) and meta.path == tmp_path / "data" / "collab.db"
    await docs.open()
    await meta.open()
    try:
        await meta.create_room("r", "R", "u1")
        assert await docs.append(DocKey("r", "notes"), [b"x"]) == 1
        assert (await meta.get_room("r")) is not None
    finally:
        await meta.close()
        await docs.close()


def test_meta_store_urls() -> None:
    assert isinstance(open_meta_store("memory://"), MemoryMetaStore)
    relative = open_meta_store("sqlite:///./data/collab.db", synchronous="NORMAL")
    assert isinstance(relative, SQLiteMetaStore)
    assert relative.path == Path("data/collab.db") and relative.synchronous == "NORMAL"
    assert isinstance(open_meta_store("/tmp/x.db"), SQLiteMetaStore)
    with pytest.raises(StoreError):
        open_meta_store("postgres://nope")
    with pytest.raises(StoreError):
        open_meta_store("sqlite://host/x.db")
