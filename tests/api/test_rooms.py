"""Rooms routes: happy paths, refusals (status + JSON error body), pagination, caps, CSRF."""

from __future__ import annotations

import httpx
import pytest

from tests.api.conftest import Api, assert_error
from tests.support.race import STORES, race, racing_servers
from tests.support.server import ServerFactory


def test_create_get_rename_list(api: Api) -> None:
    alice = api.user("alice")
    r = alice.http.post("/rooms", json={"id": "team", "title": "The team"})
    assert r.status_code == 201
    body = r.json()
    assert body["id"] == "team" and body["title"] == "The team" and body["role"] == "owner"
    assert body["created_by"] == alice.user_id
    assert alice.http.get("/rooms/team").json()["title"] == "The team"
    r = alice.http.patch("/rooms/team", json={"title": "Renamed"})
    assert r.status_code == 200 and r.json()["title"] == "Renamed"
    generated = alice.http.post("/rooms", json={}).json()
    assert generated["id"] and generated["title"] == generated["id"]
    ids = [room["id"] for room in alice.http.get("/rooms").json()["items"]]
    assert ids == ["team", generated["id"]]
    assert api.dev.http.get("/rooms").json()["items"] == []  # only one's own rooms


def test_refusals(api: Api) -> None:
    alice, bob = api.user("alice"), api.user("bob")
    api.room("r", owner=alice, **{bob.user_id: "editor"})
    assert_error(alice.http.post("/rooms", json={"id": "r"}), 409, "conflict")
    assert_error(alice.http.post("/rooms", json={"id": "bad/id"}), 400, "bad_name")
    assert_error(alice.http.post("/rooms", json={"id": "x", "title": ""}), 400, "bad_request")
    assert_error(alice.http.post("/rooms", json={"id": 5}), 400, "bad_request")
    assert_error(alice.http.post("/rooms", content=b"{nope"), 400, "bad_request")
    assert_error(alice.http.post("/rooms", content=b"[1]"), 400, "bad_request")
    assert_error(alice.http.post("/rooms", content=b"x" * 70_000), 413, "body_too_large")
    assert_error(api.anonymous().get("/rooms"), 401, "unauthorized")
    bad = httpx.Client(
        base_url=api.server.http_url + "/api/v1", headers={"authorization": "Bearer nope"}
    )
    assert_error(bad.get("/rooms"), 401, "unauthorized")
    bad.close()
    assert_error(bob.http.patch("/rooms/r", json={"title": "t"}), 403, "forbidden")
    assert_error(bob.http.delete("/rooms/r"), 403, "forbidden")
    carol = api.user("carol")
    # A non-member learns nothing about which rooms exist (issue 8, item 5).
    assert carol.http.get("/rooms/r").json() == carol.http.get("/rooms/missing").json()
    assert_error(carol.http.get("/rooms/r"), 404, "not_found")
    assert_error(alice.http.get("/rooms/bad!name"), 400, "bad_name")
    assert_error(alice.http.get("/no-such-route"), 404, "not_found")
    assert_error(alice.http.put("/rooms"), 405, "method_not_allowed")
    assert alice.http.get("/rooms/r").status_code == 200


def test_pagination(api: Api) -> None:
    alice = api.user("alice")
    for i in range(5):
        api.room(f"p{i}", owner=alice)
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params = {"limit": "2"} | ({"cursor": cursor} if cursor else {})
        body = alice.http.get("/rooms", params=params).json()
        seen += [room["id"] for room in body["items"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == [f"p{i}" for i in range(5)] and pages == 3
    assert_error(alice.http.get("/rooms", params={"cursor": "!!"}), 400, "bad_request")
    assert_error(alice.http.get("/rooms", params={"cursor": "WyJ4Il0"}), 400, "bad_request")
    assert_error(alice.http.get("/rooms", params={"limit": "0"}), 400, "bad_request")
    assert_error(alice.http.get("/rooms", params={"limit": "x"}), 400, "bad_request")


def test_rooms_per_user_cap(server_factory: ServerFactory) -> None:
    server = server_factory(max_rooms_per_user=2)
    api = Api(server)
    try:
        alice = api.user("alice")
        api.room("a1", owner=alice)
        api.room("a2", owner=alice)
        assert_error(alice.http.post("/rooms", json={"id": "a3"}), 403, "limit_reached")
        assert alice.http.delete("/rooms/a1").status_code == 204
        assert alice.http.post("/rooms", json={"id": "a3"}).status_code == 201
    finally:
        api.close()


def test_csrf_cookie_requests_need_our_origin(api: Api) -> None:
    alice = api.user("alice")
    own_origin = api.server.http_url
    foreign = api.cookie_client(alice.user_id, "https://evil.example")
    assert_error(foreign.post("/rooms", json={"id": "c1"}), 403, "forbidden")
    assert "cross-origin" in foreign.post("/rooms", json={"id": "c1"}).json()["error"]["message"]
    no_origin = api.cookie_client(alice.user_id, None)
    assert_error(no_origin.post("/rooms", json={"id": "c1"}), 403, "forbidden")
    assert no_origin.get("/rooms").status_code == 200  # safe methods need no Origin
    same = api.cookie_client(alice.user_id, own_origin)
    r = same.post("/rooms", json={"id": "c1"})
    assert r.status_code == 201, r.text
    assert_error(foreign.patch("/rooms/c1", json={"title": "x"}), 403, "forbidden")
    assert_error(foreign.delete("/rooms/c1"), 403, "forbidden")
    assert same.get("/me").json()["via"] == "session"
    # Bearer credentials are not sent by browsers on their own: no Origin check for them.
    assert (
        alice.http.post(
            "/rooms", json={"id": "c2"}, headers={"origin": "https://evil.example"}
        ).status_code
        == 201
    )


def test_room_token_is_limited_to_its_room(api: Api) -> None:
    alice = api.user("alice")
    api.room("mine", owner=alice)
    api.room("other", owner=alice)
    token = alice.http.post("/rooms/mine/tokens", json={"role": "viewer"}).json()["token"]
    scoped = httpx.Client(
        base_url=api.server.http_url + "/api/v1", headers={"authorization": f"Bearer {token}"}
    )
    try:
        r = scoped.get("/rooms/mine")
        assert r.status_code == 200 and r.json()["role"] == "viewer"
        assert_error(scoped.get("/rooms/other"), 403, "forbidden")
        assert_error(scoped.get("/rooms"), 403, "forbidden")
        assert_error(scoped.post("/rooms", json={"id": "z"}), 403, "forbidden")
        assert_error(scoped.delete("/rooms/mine"), 403, "forbidden")
        me = scoped.get("/me").json()
        assert (
            me["via"] == "room_token"
            and me["room_scope"] == "mine"
            and me["role_ceiling"] == "viewer"
        )
    finally:
        scoped.close()


@pytest.mark.anyio
@pytest.mark.parametrize("store", STORES)
async def test_concurrent_creates_stay_within_the_room_cap(
    request: pytest.FixtureRequest, store: str
) -> None:
    """16 creates at once for a cap of 2: counted, then written, in two steps, 3 to 9 got in
    (found in review); the count and the insert are one step now, on every store (PostgreSQL:
    two nodes)."""
    servers = racing_servers(request, store, max_rooms_per_user=2)
    token = servers[0].dev_token
    answers = await race(servers, token, "POST", [("/rooms", {"id": f"r{i}"}) for i in range(16)])
    created = [r for r in answers if r.status_code == 201]
    assert len(created) == 2, [r.status_code for r in answers]
    for refused in (r for r in answers if r.status_code != 201):
        assert_error(refused, 403, "limit_reached")
    (listed,) = await race(servers[-1:], token, "GET", [("/rooms", None)])
    ids = sorted(room["id"] for room in listed.json()["items"])
    assert ids == sorted(r.json()["id"] for r in created)
