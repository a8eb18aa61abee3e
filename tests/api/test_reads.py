"""Read markers and unread counts against a real server (issue 9, Done means 5): counts go up
with others' posts and not one's own, markers move them down, every member sees the public
markers live in the `chat` doc's `reads`; and every refusal of the new routes."""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from typing import Any

import anyio
import httpx
import pytest
from pycrdt import Doc, Map

from tests.api.conftest import Api, assert_error
from tests.support.pyclient import provider
from tests.support.rawpeer import RawPeer
from tests.support.server import CollabServer, ServerFactory
from tests.support.tokens import seconds_past_exp


def post(client: httpx.Client, room: str, text: str, cid: str) -> dict[str, Any]:
    r = client.post(f"/rooms/{room}/messages", json={"text": text, "client_id": cid})
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


def mark(client: httpx.Client, room: str, up_to: Any) -> httpx.Response:
    return client.post(f"/rooms/{room}/read", json={"up_to": up_to})


def counts(client: httpx.Client) -> dict[str, tuple[int, int]]:
    items = client.get("/rooms").json()["items"]
    return {room["id"]: (room["unread"], room["mentions"]) for room in items}


def test_unread_goes_up_with_others_posts_and_markers_move_it_down(api: Api) -> None:
    alice, bob = api.user("alice"), api.user("bob")
    api.room("r", owner=api.dev, **{alice.user_id: "commenter", bob.user_id: "viewer"})
    api.room("quiet", owner=api.dev, **{bob.user_id: "viewer"})
    assert counts(bob.http) == {"r": (0, 0), "quiet": (0, 0)}
    for n in range(3):
        post(alice.http, "r", f"from alice {n}", f"a{n}")
    post(api.dev.http, "r", "from dev", "d1")
    assert counts(bob.http)["r"] == (4, 0)
    assert counts(alice.http)["r"] == (1, 0)  # her own three do not count
    assert counts(api.dev.http)["r"] == (3, 0)

    r = mark(bob.http, "r", 2)  # a viewer may mark
    assert r.status_code == 200 and r.json() == {"up_to": 2}
    assert counts(bob.http)["r"] == (2, 0)
    assert mark(bob.http, "r", 1).json() == {"up_to": 2}  # backwards: ignored, answered
    assert counts(bob.http)["r"] == (2, 0)
    assert mark(bob.http, "r", 10**6).json() == {"up_to": 4}  # past the end: the end
    assert counts(bob.http) == {"r": (0, 0), "quiet": (0, 0)}
    gone = post(alice.http, "r", "oops", "a9")
    assert counts(bob.http)["r"] == (1, 0)
    assert alice.http.delete(f"/rooms/r/messages/{gone['id']}").status_code == 204
    assert counts(bob.http)["r"] == (0, 0)  # a deleted message is not unread
    assert counts(alice.http)["r"] == (1, 0)  # the others' counts are their own
    assert mark(alice.http, "r", 0).json() == {"up_to": 0}


def test_the_reads_list_shows_each_members_marker(api: Api) -> None:
    alice, bob, carol = api.user("alice"), api.user("bob"), api.user("carol")
    api.room("r", owner=api.dev, **{alice.user_id: "viewer", bob.user_id: "editor"})
    for n in range(3):
        post(api.dev.http, "r", f"m{n}", f"c{n}")
    mark(alice.http, "r", 3)
    mark(bob.http, "r", 1)
    marked = {alice.user_id: 3, bob.user_id: 1}
    expected = [{"user_id": user, "up_to": marked[user]} for user in sorted(marked)]
    listed = carol.http.get("/rooms/r/reads")
    assert_error(listed, 404, "not_found")
    page = api.dev.http.get("/rooms/r/reads").json()
    assert page == {"items": expected, "next_cursor": None}
    first = api.dev.http.get("/rooms/r/reads", params={"limit": 1}).json()
    rest = api.dev.http.get("/rooms/r/reads", params={"cursor": first["next_cursor"]}).json()
    assert first["items"] + rest["items"] == expected
    # A member who leaves leaves the list.
    assert api.dev.http.delete(f"/rooms/r/members/{bob.user_id}").status_code == 204
    users = [i["user_id"] for i in alice.http.get("/rooms/r/reads").json()["items"]]
    assert users == [alice.user_id]


def reads_of(doc: Doc[Any]) -> dict[str, Any]:
    found: dict[str, Any] = doc.get("reads", type=Map).to_py() or {}
    return found


async def wait_reads(doc: Doc[Any], check: Any, within: float = 10) -> None:
    with anyio.fail_after(within):
        while not check(reads_of(doc)):
            await asyncio.sleep(0.02)


@pytest.mark.anyio
async def test_public_markers_show_live_in_the_chat_doc(server: CollabServer) -> None:
    api = Api(server)
    try:
        alice, bob = api.user("alice"), api.user("bob")
        api.room("r", owner=api.dev, **{alice.user_id: "viewer", bob.user_id: "commenter"})
        posted = [post(bob.http, "r", f"m{n}", f"b{n}") for n in range(3)]
        mark(bob.http, "r", 3)
        async with provider(server.ws_url("r", "chat", token=alice.token)) as (doc, _):
            await wait_reads(doc, lambda reads: reads == {bob.user_id: 3})
            assert mark(alice.http, "r", 2).status_code == 200
            await wait_reads(doc, lambda reads: reads.get(alice.user_id) == 2)
            seen_by = {
                m["seq"]: sorted(u for u, up_to in reads_of(doc).items() if up_to >= m["seq"])
                for m in posted
            }
            assert seen_by == {
                1: sorted([alice.user_id, bob.user_id]),
                2: sorted([alice.user_id, bob.user_id]),
                3: [bob.user_id],
            }
        # Loaded afresh (after a restart), the doc shows the same markers.
        server.terminate()
        server.start()
        async with provider(server.ws_url("r", "chat", token=alice.token)) as (doc, _):
            await wait_reads(doc, lambda reads: reads == {bob.user_id: 3, alice.user_id: 2})
    finally:
        api.close()


def test_many_markers_at_once_are_each_answered(api: Api) -> None:
    users = [api.user(f"u{n}") for n in range(12)]
    api.room("r", owner=api.dev, **{u.user_id: "viewer" for u in users})
    for n in range(5):
        post(api.dev.http, "r", f"m{n}", f"c{n}")

    def marks(user: Any) -> list[int]:
        return [mark(user.http, "r", n).json()["up_to"] for n in (1, 3, 2, 5)]

    with concurrent.futures.ThreadPoolExecutor(12) as pool:
        answers = list(pool.map(marks, users))
    assert answers == [[1, 3, 3, 5]] * 12
    listed = api.dev.http.get("/rooms/r/reads").json()["items"]
    assert {i["user_id"]: i["up_to"] for i in listed} == {u.user_id: 5 for u in users}


def test_marker_refusals(api: Api) -> None:
    owner, outsider = api.user("owner"), api.user("outsider")
    api.room("r", owner=owner)
    post(owner.http, "r", "hi", "o1")
    for role in ("viewer", "commenter", "editor"):
        member = api.user(role)
        owner.http.post("/rooms/r/members", json={"user_id": member.user_id, "role": role})
        assert mark(member.http, "r", 1).json() == {"up_to": 1}, role
        assert member.http.get("/rooms/r/reads").status_code == 200
    assert mark(owner.http, "r", 1).json() == {"up_to": 1}
    there, missing = mark(outsider.http, "r", 1), mark(outsider.http, "nosuch", 1)
    assert there.status_code == missing.status_code == 404 and there.json() == missing.json()
    assert_error(mark(api.anonymous(), "r", 1), 401)
    assert_error(mark(api.bearer("not-a-token"), "r", 1), 401)
    for bad in (None, "1", 1.5, True, -1, 2**62 + 1, 10**30, [1], {"n": 1}):
        assert_error(mark(owner.http, "r", bad), 400, "bad_request")
    assert_error(owner.http.post("/rooms/r/read", content=b"{nope"), 400, "bad_request")
    assert_error(owner.http.post("/rooms/r/read", json=[1]), 400, "bad_request")
    assert_error(owner.http.post("/rooms/r/read", content=b"x" * 100_000), 413, "body_too_large")
    assert_error(owner.http.post("/rooms/bad%20name/read", json={"up_to": 1}), 400)


def test_a_revoked_or_expired_credential_marks_nothing(api: Api) -> None:
    alice = api.user("alice")
    api.room("r", owner=api.dev, **{alice.user_id: "viewer"})
    post(api.dev.http, "r", "hi", "d1")
    token = api.server.mint_token(
        "alice", "r", "viewer", ttl=3
    )  # exp is whole seconds: 1 s could be gone before the first call
    by_room_token = api.bearer(token)
    assert mark(by_room_token, "r", 1).json() == {"up_to": 1}  # a room token may mark
    assert by_room_token.get("/rooms/r/reads").status_code == 200
    tokens = alice.http.get("/tokens").json()["items"]
    assert alice.http.delete(f"/tokens/{tokens[0]['id']}").status_code == 204
    assert_error(mark(alice.http, "r", 1), 401)
    assert_error(alice.http.get("/rooms/r/reads"), 401)
    time.sleep(seconds_past_exp(token))  # the scenario: the token runs out
    assert_error(mark(by_room_token, "r", 1), 401)
    assert_error(by_room_token.get("/rooms/r/reads"), 401)


def test_a_flood_of_markers_gets_429(server_factory: ServerFactory) -> None:
    server = server_factory(chat_write_rate=1, chat_write_burst=5)
    api = Api(server)
    try:
        api.room("r")
        codes = [mark(api.dev.http, "r", 0).status_code for _ in range(8)]
        assert codes[:5] == [200] * 5 and set(codes[5:]) == {429}
        limited = mark(api.dev.http, "r", 0)
        assert_error(limited, 429, "rate_limited")
        assert int(limited.headers["retry-after"]) >= 1
    finally:
        api.close()


@pytest.mark.parametrize("path", ["/rooms/{room}/read", "/rooms/{room}/reads"])
def test_openapi_documents_the_marker_routes(server: CollabServer, path: str) -> None:
    spec = httpx.get(server.http_url + "/api/v1/openapi.json").json()
    assert "/api/v1" + path in spec["paths"]


def listed(actor: Any, room: str) -> dict[str, int]:
    items = actor.http.get(f"/rooms/{room}/reads").json()["items"]
    return {i["user_id"]: i["up_to"] for i in items}


@pytest.mark.anyio
async def test_private_markers_are_not_shown_yet_lower_ones_own_counts(
    server: CollabServer,
) -> None:
    api = Api(server)
    try:
        alice, bob = api.user("alice"), api.user("bob")
        api.room("r", owner=api.dev, **{alice.user_id: "viewer", bob.user_id: "viewer"})
        api.room("idle", owner=api.dev, **{alice.user_id: "viewer"})  # its chat never loaded
        for n in range(4):
            post(api.dev.http, "r", f"m{n}", f"d{n}")
        r = alice.http.patch("/me", json={"private_read_markers": True})
        assert r.status_code == 200 and r.json()["private_read_markers"] is True
        async with provider(server.ws_url("r", "chat", token=bob.token)) as (doc, _):
            assert mark(alice.http, "r", 3).json() == {"up_to": 3}
            assert counts(alice.http)["r"] == (1, 0)  # her own counts follow her marker
            mark(bob.http, "r", 1)
            await wait_reads(doc, lambda reads: reads == {bob.user_id: 1})
            mark(alice.http, "r", 4)
            mark(bob.http, "r", 2)  # a later write: still nothing of alice's
            await wait_reads(doc, lambda reads: reads == {bob.user_id: 2})
            assert counts(alice.http)["r"] == (0, 0)
            assert listed(bob, "r") == {bob.user_id: 2}  # not shown to others
            assert listed(api.dev, "r") == {bob.user_id: 2}
            assert listed(alice, "r") == {alice.user_id: 4, bob.user_id: 2}  # her own: yes

            # Public again: her marker shows at once; private again: gone at once.
            alice.http.patch("/me", json={"private_read_markers": False})
            await wait_reads(doc, lambda reads: reads == {bob.user_id: 2, alice.user_id: 4})
            assert listed(bob, "r") == {bob.user_id: 2, alice.user_id: 4}
            bob.http.patch("/me", json={"private_read_markers": True})
            await wait_reads(doc, lambda reads: reads == {alice.user_id: 4})
            assert listed(alice, "r") == {alice.user_id: 4}
            assert counts(bob.http)["r"] == (2, 0)
        # Loaded afresh, the doc shows only the public markers.
        server.terminate()
        server.start()
        async with provider(server.ws_url("r", "chat", token=alice.token)) as (doc, _):
            await wait_reads(doc, lambda reads: reads == {alice.user_id: 4})
            alice.http.patch("/me", json={"private_read_markers": True})
            await wait_reads(doc, lambda reads: reads == {})
    finally:
        api.close()


def test_unread_counts_in_direct_messages(api: Api) -> None:
    alice, bob = api.user("alice"), api.user("bob")
    dm = alice.http.post("/dms", json={"user": bob.user_id}).json()["id"]
    post(alice.http, dm, "hi bob", "a1")
    post(alice.http, dm, "you there, @bob?", "a2")
    items = bob.http.get("/dms").json()["items"]
    assert [(i["id"], i["unread"], i["mentions"]) for i in items] == [(dm, 2, 1)]
    assert mark(bob.http, dm, 2).json() == {"up_to": 2}
    items = bob.http.get("/dms").json()["items"]
    assert [(i["unread"], i["mentions"]) for i in items] == [(0, 0)]
    assert [(i["unread"], i["mentions"]) for i in alice.http.get("/dms").json()["items"]] == [
        (0, 0)
    ]


@pytest.mark.anyio
async def test_read_markers_over_the_chat_socket(server: CollabServer) -> None:
    api = Api(server)
    try:
        viewer, bob = api.user("viewer"), api.user("bob")
        api.room("r", owner=api.dev, **{viewer.user_id: "viewer", bob.user_id: "viewer"})
        for n in range(3):
            post(api.dev.http, "r", f"m{n}", f"d{n}")
        peer = await RawPeer.connect(server.ws_url("r", "chat", "collab=1", token=viewer.token))
        try:
            assert await peer.ask({"op": "read", "client_id": "k1", "up_to": 2}) == {
                "client_id": "k1",
                "up_to": 2,
            }
            reply = await peer.ask({"op": "read", "client_id": "k2", "up_to": 1})
            assert reply == {"client_id": "k2", "up_to": 2}  # backwards: unchanged
            reply = await peer.ask({"op": "read", "client_id": "k3", "up_to": 99})
            assert reply == {"client_id": "k3", "up_to": 3}
            await wait_reads(peer.doc, lambda reads: reads == {viewer.user_id: 3})
            assert counts(viewer.http)["r"] == (0, 0) and counts(bob.http)["r"] == (3, 0)
            assert listed(bob, "r") == {viewer.user_id: 3}
        finally:
            await peer.close()
    finally:
        api.close()
