"""Direct messages on the API: ``POST /dms`` opens one private room per pair (idempotent and
race-free), ``GET /dms`` lists them apart from the rooms, nobody else is ever added (409), and
every refusal a new route owes (non-member 404, room credentials 403, flood 429, 413, 400)."""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Iterator
from typing import Any

import anyio
import httpx
import pytest

from collab.meta import MetaStore
from tests.api.conftest import Actor, Api, assert_error
from tests.cli.test_admin import collab
from tests.support.rawpeer import RawPeer
from tests.support.server import CollabServer, ServerFactory

pytestmark = pytest.mark.anyio

DM_MEMBERS = "a direct message has exactly two members"


@pytest.fixture
def roomy(server_factory: ServerFactory) -> Iterator[Api]:
    """A server whose creation rates do not get in the way of a burst of opens."""
    helper = Api(server_factory(api_create_burst=500))
    yield helper
    helper.close()


def _open(actor: Actor, who: str, status: int = 201) -> dict[str, Any]:
    r = actor.http.post("/dms", json={"user": who})
    assert r.status_code == status, r.text
    body: dict[str, Any] = r.json()
    return body


def test_open_is_idempotent_and_shows_the_peer(api: Api) -> None:
    ann, bob = api.user("ann"), api.user("Bob B")
    dm = _open(ann, bob.user_id)
    assert dm["id"].startswith("dm-") and dm["kind"] == "dm" and dm["role"] == "editor"
    assert dm["peer"] == {"id": bob.user_id, "name": "Bob B", "handle": "bob-b"}
    assert dm["created_by"] == ann.user_id
    assert _open(ann, bob.user_id, 200) == dm
    assert _open(ann, "BOB-B", 200)["id"] == dm["id"], "by handle, whatever the case"
    assert _open(ann, "@bob-b", 200)["id"] == dm["id"]
    back = _open(bob, ann.user_id, 200)
    assert back["id"] == dm["id"] and back["peer"]["handle"] == "ann"
    assert _open(bob, "ann", 200)["peer"]["id"] == ann.user_id
    # GET /rooms/{room} works for both members, in the same shape.
    assert ann.http.get(f"/rooms/{dm['id']}").json() == dm
    assert bob.http.get(f"/rooms/{dm['id']}").json() == back
    members = ann.http.get(f"/rooms/{dm['id']}/members").json()["items"]
    assert {(m["user_id"], m["role"]) for m in members} == {
        (ann.user_id, "editor"),
        (bob.user_id, "editor"),
    }
    events = [
        e for e in api.server.with_meta(lambda meta: meta.list_audit()) if e.action == "dm.open"
    ]
    assert [(e.actor, e.room_id, e.target) for e in events] == [
        (ann.user_id, dm["id"], bob.user_id)
    ]


def test_listed_apart_from_rooms_and_paged(api: Api) -> None:
    ann = api.user("ann")
    others = [api.user(f"u{i}") for i in range(3)]
    api.room("plain", owner=ann)
    opened = [_open(ann, other.user_id)["id"] for other in others]
    assert [r["id"] for r in ann.http.get("/rooms").json()["items"]] == ["plain"]
    assert ann.http.get("/rooms/plain").json()["kind"] == "room"
    page = ann.http.get("/dms", params={"limit": 2}).json()
    assert [d["id"] for d in page["items"]] == opened[:2] and page["next_cursor"]
    rest = ann.http.get("/dms", params={"limit": 2, "cursor": page["next_cursor"]}).json()
    assert [d["id"] for d in rest["items"]] == opened[2:] and rest["next_cursor"] is None
    assert [d["peer"]["handle"] for d in page["items"] + rest["items"]] == ["u0", "u1", "u2"]
    assert [d["id"] for d in others[1].http.get("/dms").json()["items"]] == [opened[1]]
    assert others[1].http.get("/rooms").json()["items"] == []
    assert_error(ann.http.get("/dms", params={"cursor": "%%%"}), 400, "bad_request")


def test_dms_do_not_count_against_the_room_cap(server_factory: ServerFactory) -> None:
    api = Api(server_factory(max_rooms_per_user=1))
    try:
        ann, bob, carol = api.user("ann"), api.user("bob"), api.user("carol")
        api.room("mine", owner=ann)
        _open(ann, bob.user_id)
        _open(ann, carol.user_id)
        assert_error(ann.http.post("/rooms", json={"id": "more"}), 403, "limit_reached")
    finally:
        api.close()


async def test_concurrent_opens_both_ways_make_one_room(roomy: Api) -> None:
    """50 tries, each a fresh pair opening A->B and B->A (twice each) at the same moment."""
    users = [roomy.user(f"p{i}") for i in range(11)]
    pairs = list(itertools.combinations(users, 2))[:50]
    clients = {
        u.user_id: httpx.AsyncClient(
            base_url=roomy.server.http_url + "/api/v1",
            headers={"authorization": f"Bearer {u.token}"},
            timeout=30,
        )
        for u in users
    }
    answers: dict[tuple[str, str], list[httpx.Response]] = {}

    async def open_dm(a: Actor, b: Actor, key: tuple[str, str]) -> None:
        r = await clients[a.user_id].post("/dms", json={"user": b.user_id})
        answers.setdefault(key, []).append(r)

    try:
        with anyio.fail_after(60):
            for a, b in pairs:
                key = (a.user_id, b.user_id)
                async with anyio.create_task_group() as tg:
                    for opener, peer in ((a, b), (b, a), (a, b), (b, a)):
                        tg.start_soon(open_dm, opener, peer, key)
    finally:
        for client in clients.values():
            await client.aclose()
    assert len(answers) == 50
    for key, responses in answers.items():
        assert sorted(r.status_code for r in responses) == [200, 200, 200, 201], key
        assert len({r.json()["id"] for r in responses}) == 1, key
    for user in users:
        listed = user.http.get("/dms", params={"limit": 200}).json()["items"]
        assert len(listed) == len({d["peer"]["id"] for d in listed})


def _invite_into(server: CollabServer, invite_id: str, room_id: str) -> None:
    """Point an invite at the DM under the API (which never makes one there)."""
    with sqlite3.connect(server.store.removeprefix("sqlite:///")) as db:
        db.execute("UPDATE invites SET room_id=? WHERE id=?", (room_id, invite_id))


def test_nobody_else_is_ever_added(api: Api) -> None:
    ann, bob = api.user("ann"), api.user("bob")
    carol = api.user("carol", email="carol@example.com", verified=True)
    room = _open(ann, bob.user_id)["id"]
    base = f"/rooms/{room}"
    for actor in (ann, bob):
        for response in (
            actor.http.post(base + "/members", json={"user_id": carol.user_id, "role": "viewer"}),
            actor.http.post(base + "/members", json={"email": "carol@example.com"}),
            actor.http.patch(f"{base}/members/{bob.user_id}", json={"role": "owner"}),
            actor.http.delete(f"{base}/members/{bob.user_id}"),
            actor.http.delete(f"{base}/members/{actor.user_id}"),  # leaving
            actor.http.post(base + "/invites", json={"role": "viewer"}),
            actor.http.post(base + "/tokens", json={}),
            actor.http.patch(base, json={"title": "renamed"}),
            actor.http.delete(base),
        ):
            assert_error(response, 409, "conflict")
    r = ann.http.post(base + "/members", json={"user_id": carol.user_id, "role": "viewer"})
    assert r.json()["error"]["message"] == DM_MEMBERS
    assert "not issued" in ann.http.post(base + "/tokens", json={}).json()["error"]["message"]
    # An invite that got there anyhow is refused on acceptance, by code and by email.
    api.room("elsewhere", owner=ann)
    by_code = ann.http.post("/rooms/elsewhere/invites", json={"role": "viewer"}).json()
    by_email = ann.http.post(
        "/rooms/elsewhere/members", json={"email": "carol@example.com", "role": "viewer"}
    ).json()
    _invite_into(api.server, by_code["id"], room)
    _invite_into(api.server, by_email["id"], room)
    accepted = carol.http.post(f"/invites/{by_code['code']}/accept")
    assert_error(accepted, 409, "conflict")
    assert accepted.json()["error"]["message"] == DM_MEMBERS
    assert_error(carol.http.post(f"/me/invites/{by_email['id']}/accept"), 409, "conflict")
    assert_error(carol.http.get(base), 404, "not_found")
    members = ann.http.get(base + "/members").json()["items"]
    assert sorted(m["user_id"] for m in members) == sorted([ann.user_id, bob.user_id])
    assert ann.http.post(base + "/tickets", json={}).status_code == 201  # a browser's socket
    refused = collab(api, "token", "create", "--user", ann.user_id, "--room", room, ok=False)
    assert "not issued for direct messages" in refused.stderr


async def test_strangers_and_room_credentials(api: Api) -> None:
    ann, bob, eve = api.user("ann"), api.user("bob"), api.user("eve")
    room = _open(ann, bob.user_id)["id"]
    for path in ("", "/members", "/docs", "/invites", "/audit"):
        assert_error(eve.http.get(f"/rooms/{room}{path}"), 404, "not_found")
    assert_error(eve.http.post(f"/rooms/{room}/members", json={"user_id": eve.user_id}), 404)
    assert_error(eve.http.delete(f"/rooms/{room}"), 404, "not_found")
    assert_error(eve.http.get("/rooms/dm-nosuchroom"), 404, "not_found")
    assert eve.http.get("/dms").json()["items"] == []
    # Room-narrowed credentials never open or list DMs (personal credentials only).
    api.room("r", owner=ann)
    token = api.server.remember(ann.http.post("/rooms/r/tokens", json={}).json()["token"])
    ticket = ann.http.post("/rooms/r/tickets", json={}).json()["ticket"]
    for credential in (token, ticket):
        narrowed = api.bearer(credential)
        assert_error(narrowed.post("/dms", json={"user": bob.user_id}), 403, "forbidden")
    assert_error(api.bearer(token).get("/dms"), 403, "forbidden")
    assert_error(api.anonymous().post("/dms", json={"user": bob.user_id}), 401, "unauthorized")
    assert_error(api.anonymous().get("/dms"), 401, "unauthorized")
    # Both members write the DM's docs; a stranger's socket is refused.
    with anyio.fail_after(10):
        writer = await RawPeer.connect(api.server.ws_url(room, "notes", token=bob.token))
        await writer.insert(0, "hi")
        reader = await RawPeer.connect(api.server.ws_url(room, "notes", token=ann.token))
        await reader.wait_for(lambda: str(reader.text) == "hi")
        await reader.insert(2, "!")
        await writer.wait_for(lambda: str(writer.text) == "hi!")
        stranger = await RawPeer.connect(
            api.server.ws_url(room, "notes", token=eve.token), sync=False
        )
        await stranger.closed.wait()
        assert stranger.close_code == 4404  # as for no such room
        await writer.close()
        await reader.close()


def test_refusals(api: Api) -> None:
    ann, bob = api.user("ann"), api.user("bob")
    assert_error(ann.http.post("/dms", json={"user": ann.user_id}), 400, "bad_request")
    assert_error(ann.http.post("/dms", json={"user": "ANN"}), 400, "bad_request")
    assert_error(ann.http.post("/dms", json={"user": "nobody"}), 404, "not_found")
    assert_error(ann.http.post("/dms", json={"user": "no such handle!"}), 404, "not_found")
    assert_error(ann.http.post("/dms", json={}), 400, "bad_request")
    assert_error(ann.http.post("/dms", json={"user": ""}), 400, "bad_request")
    assert_error(ann.http.post("/dms", json={"user": 5}), 400, "bad_request")
    assert_error(ann.http.post("/dms", json={"user": "x" * 300}), 400, "bad_request")
    assert_error(ann.http.post("/dms", content=b"{"), 400, "bad_request")
    assert_error(ann.http.post("/dms", json=["bob"]), 400, "bad_request")
    assert_error(ann.http.post("/dms", content=b"x" * 70_000), 413, "body_too_large")
    assert ann.http.get("/dms").json()["items"] == []
    assert _open(ann, bob.user_id)["peer"]["id"] == bob.user_id


def test_a_disabled_peer(api: Api) -> None:
    """An existing DM stays readable and is still found; a new one is refused like an unknown
    user."""
    ann, bob, carol = api.user("ann"), api.user("bob"), api.user("carol")
    room = _open(ann, bob.user_id)["id"]

    async def disable(meta: MetaStore) -> None:
        for user in (bob, carol):
            await meta.set_user_disabled(user.user_id, True)

    api.server.with_meta(disable)
    assert_error(ann.http.post("/dms", json={"user": carol.user_id}), 404, "not_found")
    assert _open(ann, bob.user_id, 200)["id"] == room
    assert ann.http.get(f"/rooms/{room}").json()["peer"]["id"] == bob.user_id
    assert [d["id"] for d in ann.http.get("/dms").json()["items"]] == [room]
    assert_error(bob.http.get("/dms"), 401, "unauthorized")


def test_opening_is_rate_limited(server_factory: ServerFactory) -> None:
    api = Api(server_factory(api_create_burst=3, api_create_rate=0.05))
    try:
        ann = api.user("ann")
        others = [api.user(f"u{i}") for i in range(5)]
        statuses = [ann.http.post("/dms", json={"user": o.user_id}).status_code for o in others]
        assert statuses == [201] * 3 + [429] * 2
        refused = ann.http.post("/dms", json={"user": others[0].user_id})
        assert_error(refused, 429, "rate_limited")
        assert int(refused.headers["retry-after"]) >= 1
        assert len(ann.http.get("/dms").json()["items"]) == 3
        # Another kind has its own bucket.
        assert ann.http.post("/rooms", json={"id": "still"}).status_code == 201
    finally:
        api.close()


def test_both_chat_in_a_dm_and_a_disabled_peer_stays_readable(api: Api) -> None:
    ann, bob, eve = api.user("ann"), api.user("bob"), api.user("eve")
    room = _open(ann, "bob")["id"]
    chat = f"/rooms/{room}/messages"
    first = ann.http.post(chat, json={"text": "hi bob", "client_id": "a1"})
    assert first.status_code == 201, first.text
    reply = bob.http.post(chat, json={"text": "hi", "client_id": "b1"})
    assert reply.status_code == 201 and reply.json()["author"]["handle"] == "bob"
    assert_error(eve.http.get(chat), 404, "not_found")
    assert_error(eve.http.post(chat, json={"text": "x", "client_id": "e"}), 404, "not_found")
    api.server.with_meta(lambda meta: meta.set_user_disabled(bob.user_id, True))
    history = ann.http.get(chat).json()["items"]
    assert [m["text"] for m in history] == ["hi bob", "hi"]
