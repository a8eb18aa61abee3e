"""Room tokens, tickets, personal API tokens, /me, and the admin's user switch."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from tests.api.conftest import Api, assert_error
from tests.support.rawpeer import RawPeer
from tests.support.server import ServerFactory

pytestmark = pytest.mark.anyio


async def _closed_with(peer: RawPeer) -> int | None:
    await peer.closed.wait()
    return peer.close_code


async def test_personal_tokens_list_and_revoke(api: Api) -> None:
    alice = api.user("alice")
    api.room("r", owner=alice)
    r = alice.http.post("/tokens", json={"name": "laptop script"})
    assert r.status_code == 201
    created = r.json()
    secret = created["token"]
    listed = alice.http.get("/tokens").json()["items"]
    assert [t["name"] for t in listed] == ["test", "laptop script"]
    assert all("token" not in t for t in listed)
    url = api.server.ws_url("r", "d", token=secret)
    with anyio.fail_after(10):
        peer = await RawPeer.connect(url)
        other = await RawPeer.connect(api.server.ws_url("r", "d", token=alice.token))
        bob = api.user("bob")
        assert_error(bob.http.delete(f"/tokens/{created['id']}"), 404, "not_found")
        assert alice.http.delete(f"/tokens/{created['id']}").status_code == 204
        assert await _closed_with(peer) == 4401
        assert other.close_code is None  # only sockets opened with that token
        await other.close()
        refused = await RawPeer.connect(url, sync=False)
        assert await _closed_with(refused) == 4401
    revoked = [t for t in alice.http.get("/tokens").json()["items"] if t["id"] == created["id"]]
    assert revoked[0]["revoked"] is True
    assert_error(alice.http.delete("/tokens/nope"), 404, "not_found")
    assert_error(alice.http.post("/tokens", json={"name": ""}), 400, "bad_request")
    audit = api.server.with_meta(lambda meta: meta.list_audit(limit=20))
    assert {"token.create", "token.revoke"} <= {e.action for e in audit}


async def test_room_token_limits(api: Api) -> None:
    alice = api.user("alice")
    api.room("r", owner=alice)
    tokens = "/rooms/r/tokens"
    assert_error(alice.http.post(tokens, json={"ttl": 3601}), 400, "bad_request")
    assert_error(alice.http.post(tokens, json={"ttl": -5}), 400, "bad_request")
    assert_error(alice.http.post(tokens, json={"docs": "../x"}), 400, "bad_request")
    notes = alice.http.post(tokens, json={"docs": "notes-*", "role": "editor"}).json()
    assert notes["docs"] == "notes-*" and notes["role"] == "editor"
    with anyio.fail_after(10):
        ok = await RawPeer.connect(api.server.ws_url("r", "notes-1", token=notes["token"]))
        await ok.close()


async def test_room_token_doc_pattern_on_sockets(api: Api) -> None:
    alice = api.user("alice")
    api.room("r", owner=alice)
    notes = alice.http.post("/rooms/r/tokens", json={"docs": "notes-*"}).json()
    with anyio.fail_after(5):
        other = await RawPeer.connect(
            api.server.ws_url("r", "plan", token=notes["token"]), sync=False
        )
        assert await _closed_with(other) == 4403


async def test_owner_mints_for_the_rooms_bots_only(api: Api) -> None:
    alice, bob = api.user("alice"), api.user("bob")

    async def make_bot(meta: Any) -> str:
        bot = await meta.upsert_oidc_user(
            "collab:bot", "b1", name="bot", email=None, email_verified=False, picture=None
        )
        return str(bot.id)

    bot_id = api.server.with_meta(make_bot)
    api.room("r", owner=alice, **{bob.user_id: "editor", bot_id: "commenter"})
    r = alice.http.post("/rooms/r/tokens", json={"user_id": bot_id})
    assert (
        r.status_code == 201 and r.json()["user_id"] == bot_id and r.json()["role"] == "commenter"
    )
    assert_error(
        alice.http.post("/rooms/r/tokens", json={"user_id": bot_id, "role": "editor"}), 403
    )
    assert_error(
        alice.http.post("/rooms/r/tokens", json={"user_id": bob.user_id}), 403, "forbidden"
    )
    assert_error(bob.http.post("/rooms/r/tokens", json={"user_id": bot_id}), 403, "forbidden")
    assert_error(alice.http.post("/rooms/r/tokens", json={"user_id": "ghost"}), 404, "not_found")
    with anyio.fail_after(10):
        peer = await RawPeer.connect(api.server.ws_url("r", "chat", token=r.json()["token"]))
        assert peer.close_code is None
        await peer.close()


async def test_ticket_is_single_use(api: Api) -> None:
    alice = api.user("alice")
    api.room("r", owner=alice)
    r = alice.http.post("/rooms/r/tickets", json={"doc": "d", "role": "viewer"})
    assert r.status_code == 201 and 0 < r.json()["expires_in"] <= 60
    ticket = r.json()["ticket"]
    assert_error(alice.http.post("/rooms/r/tickets", json={"doc": "bad/doc"}), 400, "bad_name")
    with anyio.fail_after(10):
        writer = await RawPeer.connect(api.server.ws_url("r", "d", token=alice.token))
        await writer.insert(0, "x")
        await writer.request_saved(1)
        await writer.wait_for(lambda: writer.saved == 1)
        first = await RawPeer.connect(api.server.ws_url("r", "d", token=ticket))
        assert str(first.text) == "x" and first.close_code is None
        second = await RawPeer.connect(api.server.ws_url("r", "d", token=ticket), sync=False)
        assert await _closed_with(second) == 4401
        await first.close()
        await writer.close()
    viewer = api.user("viewer")
    api.dev.http.post("/rooms", json={"id": "v"})
    # Not members: the same answer as for a room that does not exist (issue 8, item 5).
    assert alice.http.post("/rooms/v/tickets").status_code == 404
    assert viewer.http.post("/rooms/v/tickets").status_code == 404


def test_me(api: Api) -> None:
    alice = api.user("alice", email="alice@example.com", verified=True)
    me = alice.http.get("/me").json()
    assert me["id"] == alice.user_id and me["email"] == "alice@example.com"
    assert me["via"] == "api_token" and me["is_admin"] is False
    assert api.dev.http.get("/me").json()["via"] == "dev"


async def test_admin_disables_and_enables_users(
    server_factory: ServerFactory,
) -> None:
    server = server_factory(admins="collab:dev:dev")
    api = Api(server)
    try:
        alice, bob = api.user("alice"), api.user("bob")
        api.room("r", owner=alice)
        assert api.dev.http.get("/me").json()["is_admin"] is True
        session = api.cookie_client(alice.user_id, server.http_url)
        assert session.get("/me").status_code == 200
        with anyio.fail_after(10):
            peer = await RawPeer.connect(server.ws_url("r", "d", token=alice.token))
            assert_error(bob.http.patch(f"/users/{alice.user_id}", json={"disabled": True}), 403)
            r = api.dev.http.patch(f"/users/{alice.user_id}", json={"disabled": True})
            assert r.status_code == 200 and r.json()["disabled"] is True
            assert await _closed_with(peer) == 4401
        assert_error(alice.http.get("/me"), 401, "unauthorized")
        assert_error(session.get("/me"), 401, "unauthorized")  # sessions were revoked
        # Admins manage any room: the dev user is not a member of alice's room.
        assert api.dev.http.patch("/rooms/r", json={"title": "moderated"}).status_code == 200
        assert (
            api.dev.http.patch(f"/users/{alice.user_id}", json={"disabled": False}).status_code
            == 200
        )
        assert alice.http.get("/me").status_code == 200
        assert_error(session.get("/me"), 401, "unauthorized")  # re-enabling revives no session
        assert_error(api.dev.http.patch("/users/nobody", json={"disabled": True}), 404, "not_found")
        assert_error(api.dev.http.patch(f"/users/{bob.user_id}", json={}), 400, "bad_request")
        dev_id = api.dev.user_id
        assert_error(api.dev.http.patch(f"/users/{dev_id}", json={"disabled": True}), 400)
        actions = [e.action for e in server.with_meta(lambda meta: meta.list_audit(limit=50))]
        assert {"user.disable", "user.enable"} <= set(actions)
    finally:
        api.close()


def test_a_room_token_lives_at_least_the_second_its_error_promises(api: Api) -> None:
    """``ttl`` is "between 1 and token_max_ttl seconds": a fraction below one used to mint a
    token already expired (its ``exp`` is whole seconds), answered 201 all the same."""
    alice = api.user("alice")
    api.room("r", owner=alice)
    for ttl in (0.001, 0.5, 0.999):
        assert_error(alice.http.post("/rooms/r/tokens", json={"ttl": ttl}), 400, "bad_request")
    minted = alice.http.post("/rooms/r/tokens", json={"ttl": 1})
    assert minted.status_code == 201, minted.text
    api.server.remember(minted.json()["token"])
