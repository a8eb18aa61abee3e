"""Revoking a room token by its id (``DELETE /api/v1/rooms/{room}/tokens/{id}``), attacked as
every new surface is: non-member, each role, a narrowed, expired or revoked credential,
malformed input, a flood; and what it does: the token's sockets close 4401, it is refused
after, no other token moves (issue 8, item 2)."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator

import anyio
import httpx
import pytest

from collab.auth.keys import load_secret_keys
from collab.auth.tokens import mint_room_token
from collab.meta import Role
from collab.settings import Settings
from tests.api.conftest import Api, assert_error
from tests.support.rawpeer import RawPeer
from tests.support.server import CollabServer, NodesFactory, ServerFactory

pytestmark = pytest.mark.anyio


@pytest.fixture
def api(server: CollabServer) -> Iterator[Api]:
    helper = Api(server)
    yield helper
    helper.close()


async def closed_with(peer: RawPeer, within: float = 5) -> int | None:
    with anyio.fail_after(within):
        await peer.closed.wait()
    return peer.close_code


async def test_owners_revoke_a_room_token_and_its_sockets_close_4401(api: Api) -> None:
    server = api.server
    alice, bob = api.user("alice"), api.user("bob")
    api.room("r", owner=alice, **{bob.user_id: "editor"})
    minted = bob.http.post("/rooms/r/tokens", json={"role": "editor"}).json()
    jti, token = minted["id"], server.remember(minted["token"])
    kept = server.remember(bob.http.post("/rooms/r/tokens", json={}).json()["token"])
    # The same id in another room (minted there, say by `collab token create`) is untouched:
    # a revocation reaches its own room's tokens only.
    api.room("elsewhere", owner=alice, **{bob.user_id: "editor"})
    keys = load_secret_keys(Settings(store=server.store))
    twin = server.remember(
        mint_room_token(
            keys, user_id=bob.user_id, room_id="elsewhere", role=Role.editor, ttl=600, jti=jti
        )
    )
    with anyio.fail_after(30):
        revoked_peer = await RawPeer.connect(server.ws_url("r", "d", token=token))
        kept_peer = await RawPeer.connect(server.ws_url("r", "d", token=kept))
        twin_peer = await RawPeer.connect(server.ws_url("elsewhere", "d", token=twin))
        assert alice.http.delete(f"/rooms/r/tokens/{jti}").status_code == 204
        assert await closed_with(revoked_peer) == 4401
        refused = await RawPeer.connect(server.ws_url("r", "d", token=token), sync=False)
        assert await closed_with(refused) == 4401
        async with httpx.AsyncClient(base_url=server.http_url + "/api/v1") as http:
            me = await http.get("/me", headers={"Authorization": f"Bearer {token}"})
            assert_error(me, 401, "unauthorized")
        assert kept_peer.close_code is None and twin_peer.close_code is None
        # Idempotent, and the answer for an id never minted is the same: nothing is revealed.
        assert alice.http.delete(f"/rooms/r/tokens/{jti}").status_code == 204
        assert alice.http.delete(f"/rooms/r/tokens/{'f' * 32}").status_code == 204
        for peer in (kept_peer, twin_peer):
            await peer.close()
    audit = alice.http.get("/rooms/r/audit").json()["items"]
    revocations = [e for e in audit if e["action"] == "room_token.revoke"]
    assert revocations and revocations[-1]["target"] == jti
    mints = [e for e in audit if e["action"] == "token.mint"]
    assert jti in {e["detail"].get("id") for e in mints}  # how an owner finds the id
    assert token not in str(audit)


async def test_only_owners_of_the_room_may_revoke(api: Api) -> None:
    server = api.server
    alice = api.user("alice")
    members = {role: api.user(role) for role in ("viewer", "commenter", "editor")}
    outsider = api.user("outsider")
    api.room("r", owner=alice, **{m.user_id: role for role, m in members.items()})
    api.room("own", owner=outsider)  # an owner, but of another room
    editor = members["editor"]
    minted = editor.http.post("/rooms/r/tokens", json={}).json()
    jti, token = minted["id"], server.remember(minted["token"])
    path = f"/rooms/r/tokens/{jti}"
    with anyio.fail_after(30):
        peer = await RawPeer.connect(server.ws_url("r", "d", token=token))
        for member in members.values():  # each role below owner, the minter itself included
            assert_error(member.http.delete(path), 403)
        # A non-member learns nothing: the same 404 as for a room that does not exist.
        assert_error(outsider.http.delete(path), 404, "not_found")
        assert_error(outsider.http.delete(f"/rooms/nonexistent/tokens/{jti}"), 404, "not_found")
        # The room token itself, narrowed to this room, may not act for its user at large.
        async with httpx.AsyncClient(base_url=server.http_url + "/api/v1") as http:
            narrowed = await http.delete(path, headers={"Authorization": f"Bearer {token}"})
            assert_error(narrowed, 403)
            # Expired and revoked credentials of the owner are no credentials.
            stale = {"Cookie": f"collab_session={server.session(alice.user_id, ttl=-1)}"}
            assert_error(await http.delete(path, headers=stale), 401)
            alice_tokens = alice.http.get("/tokens").json()["items"]
            assert alice.http.delete(f"/tokens/{alice_tokens[0]['id']}").status_code == 204
            assert_error(alice.http.delete(path), 401)
        # Still served after every refusal (a round trip), so nothing revoked it.
        await peer.request_saved(1)
        await peer.wait_for(lambda: peer.saved == 1 or peer.close_code is not None)
        assert peer.close_code is None, "a refused revocation must close nothing"
        await peer.close()


async def test_malformed_ids_bodies_and_a_flood(api: Api) -> None:
    alice = api.user("alice")
    api.room("r", owner=alice)
    for bad in ("nope", "A" * 32, "a" * 31, "a" * 33, "%2e%2e", "a" * 4000):
        response = alice.http.delete(f"/rooms/r/tokens/{bad}")
        assert response.status_code == 404, (bad[:40], response.text)
    # A body on DELETE is never read, however large.
    big = alice.http.request("DELETE", f"/rooms/r/tokens/{'b' * 32}", content=b"x" * 2_000_000)
    assert big.status_code in (204, 413)
    started = time.monotonic()
    statuses = {alice.http.delete(f"/rooms/r/tokens/{i:032x}").status_code for i in range(100)}
    assert statuses <= {204, 429}  # 429: a per-user limit on the API, if one is configured
    assert time.monotonic() - started < 20
    assert alice.http.get("/me").status_code == 200


def purged_revocations(server: CollabServer) -> int:
    return server.with_meta(lambda meta: meta.purge(audit_before=None)).revoked_room_tokens


async def test_a_revocation_is_kept_past_the_exp_of_any_token_it_names(api: Api) -> None:
    """A token's ``exp`` is rounded up to the whole second after ``now + ttl``: its
    revocation is kept the longest lifetime plus that second, so it is never purged while
    the token could still be used."""
    alice = api.user("alice")
    api.room("r", owner=alice)
    minted = alice.http.post("/rooms/r/tokens", json={}).json()  # token_max_ttl, the longest
    assert alice.http.delete(f"/rooms/r/tokens/{minted['id']}").status_code == 204
    store = api.server.store.removeprefix("sqlite:///")
    with sqlite3.connect(store) as db:
        (kept,) = db.execute(
            "SELECT expires_at FROM revoked_room_tokens WHERE jti = ?", (minted["id"],)
        ).fetchone()
    assert kept >= minted["expires_at"]


async def test_a_revoked_token_stays_refused_after_token_max_ttl_is_lowered_then_raised(
    server_factory: ServerFactory,
) -> None:
    """A token minted for an hour, revoked after a restart with a lower ``token_max_ttl``:
    its revocation used to be kept only the lower setting, then purged, and the token was
    accepted again once the setting went back up (its ``exp`` and ``iat + token_max_ttl``
    both still ahead). The revocation is kept the longest ``token_max_ttl`` the store has run
    with, so the token stays refused."""
    server = server_factory(purge_interval=0)  # the test purges, not the server's timer
    api = Api(server)
    alice, bob = api.user("alice"), api.user("bob")
    api.room("r", owner=alice, **{bob.user_id: "editor"})
    minted = bob.http.post("/rooms/r/tokens", json={"ttl": 3600}).json()
    holder = api.bearer(server.remember(minted["token"]))
    assert holder.get("/me").status_code == 200
    server.settings["token_max_ttl"] = 1
    server.restart()
    assert alice.http.delete(f"/rooms/r/tokens/{minted['id']}").status_code == 204
    assert_error(holder.get("/me"), 401, "unauthorized")
    # Past the lowered setting and the second of rounding: a revocation kept that long is purged.
    await anyio.sleep(2.5)
    purged = purged_revocations(server)
    assert server.with_meta(lambda meta: meta.token_ttl_mark()) == 3600
    server.settings["token_max_ttl"] = 3600
    server.restart()
    assert_error(holder.get("/me"), 401, "unauthorized")
    assert purged == 0
    api.close()


async def test_a_revocation_on_a_node_with_a_lower_setting_holds_on_the_others(
    nodes: NodesFactory,
) -> None:
    """Nodes on one store with different ``token_max_ttl``: a token minted for an hour on one
    and revoked through a node that allows 1 s stays refused on the first after the purge
    (its revocation used to be kept the revoking node's 1 s)."""
    (long,) = nodes(1, token_max_ttl=3600, purge_interval=0)
    (short,) = nodes(
        1, token_max_ttl=1, purge_interval=0, store=long.store, dev_token=long.dev_token
    )
    on_long, on_short = Api(long), Api(short)
    alice, bob = on_long.user("alice"), on_long.user("bob")
    on_long.room("r", owner=alice, **{bob.user_id: "editor"})
    minted = bob.http.post("/rooms/r/tokens", json={"ttl": 3600}).json()
    holder = on_long.bearer(long.remember(minted["token"]))
    assert holder.get("/me").status_code == 200
    owner_on_short = on_short.bearer(alice.token)
    assert owner_on_short.delete(f"/rooms/r/tokens/{minted['id']}").status_code == 204
    await anyio.sleep(2.5)  # past the revoking node's 1 s and the second of rounding
    purged = purged_revocations(short)
    assert_error(holder.get("/me"), 401, "unauthorized")
    assert purged == 0
    on_long.close()
    on_short.close()
