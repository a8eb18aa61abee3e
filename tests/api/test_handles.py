"""Handles on the API: shown on ``/me`` and beside members, changed by ``PATCH /me`` (400
malformed or reserved, 409 taken whatever the case), audited; ``private_read_markers``
stored and shown; bots get theirs from their name (the CLI)."""

from __future__ import annotations

import json

from collab.meta import MetaStore
from tests.api.conftest import Api, assert_error
from tests.cli.test_admin import collab
from tests.support.server import ServerFactory


def _audit(api: Api, action: str) -> list[tuple[str | None, dict[str, object]]]:
    async def read(meta: MetaStore) -> list[tuple[str | None, dict[str, object]]]:
        return [(e.target, e.detail) for e in await meta.list_audit() if e.action == action]

    return api.server.with_meta(read)


def test_me_shows_and_changes_the_handle(api: Api) -> None:
    me = api.dev.http.get("/me").json()
    assert me["handle"] == "dev" and me["private_read_markers"] is False
    ann, bob = api.user("Ann Lee"), api.user("bob")
    assert ann.http.get("/me").json()["handle"] == "ann-lee"
    r = ann.http.patch("/me", json={"handle": " Ann.L "})
    assert r.status_code == 200, r.text
    assert r.json()["handle"] == "ann.l" and r.json()["id"] == ann.user_id
    assert ann.http.get("/me").json()["handle"] == "ann.l"
    assert ann.http.patch("/me", json={"handle": "ann.l"}).status_code == 200  # unchanged
    assert _audit(api, "user.handle") == [(ann.user_id, {"handle": "ann.l", "previous": "ann-lee"})]
    # Taken, whatever the case: 409; the old handle is free again.
    assert_error(bob.http.patch("/me", json={"handle": "ANN.L"}), 409, "conflict")
    assert bob.http.patch("/me", json={"handle": "ann-lee"}).json()["handle"] == "ann-lee"
    for bad in ("", "-x", "a b", "x" * 33, "ànn", "a@b", "room", "Everyone", "here", "channel"):
        assert_error(bob.http.patch("/me", json={"handle": bad}), 400, "bad_request")
    assert_error(bob.http.patch("/me", json={"handle": 7}), 400, "bad_request")
    assert_error(bob.http.patch("/me", json={}), 400, "bad_request")
    assert_error(bob.http.patch("/me", json={"name": "x"}), 400, "bad_request")
    assert_error(bob.http.patch("/me", content=b"{nope"), 400, "bad_request")
    assert_error(bob.http.patch("/me", json=[1]), 400, "bad_request")
    assert_error(bob.http.patch("/me", content=b"x" * 70_000), 413, "body_too_large")
    assert_error(api.anonymous().patch("/me", json={"handle": "anon"}), 401, "unauthorized")
    assert bob.http.get("/me").json()["handle"] == "ann-lee"


def test_private_read_markers_setting(api: Api) -> None:
    ann = api.user("ann")
    r = ann.http.patch("/me", json={"private_read_markers": True})
    assert r.status_code == 200 and r.json()["private_read_markers"] is True
    assert ann.http.get("/me").json()["private_read_markers"] is True
    assert_error(ann.http.patch("/me", json={"private_read_markers": "yes"}), 400)
    r = ann.http.patch("/me", json={"private_read_markers": False, "handle": "ann2"})
    assert r.json()["private_read_markers"] is False and r.json()["handle"] == "ann2"
    assert [d for _, d in _audit(api, "user.private_read_markers")] == [  # newest first
        {"private": False},
        {"private": True},
    ]

    async def private(meta: MetaStore) -> set[str]:
        return await meta.get_private_read_markers([ann.user_id])

    assert api.server.with_meta(private) == set()


def test_room_credentials_cannot_change_the_handle(api: Api) -> None:
    ann = api.user("ann")
    api.room("r", owner=ann)
    token = ann.http.post("/rooms/r/tokens", json={}).json()["token"]
    room_client = api.bearer(api.server.remember(token))
    assert room_client.get("/me").json()["handle"] == "ann"  # reading is fine
    assert_error(room_client.patch("/me", json={"handle": "evil"}), 403, "forbidden")
    ticket = ann.http.post("/rooms/r/tickets", json={}).json()["ticket"]
    assert_error(api.bearer(ticket).patch("/me", json={"handle": "evil"}), 403, "forbidden")
    assert ann.http.get("/me").json()["handle"] == "ann"


def test_members_and_users_show_handles(api: Api) -> None:
    ann, bob = api.user("ann"), api.user("Bob B")
    api.room("r", owner=ann)
    r = ann.http.post("/rooms/r/members", json={"user_id": bob.user_id, "role": "viewer"})
    assert r.status_code == 201 and r.json()["handle"] == "bob-b"
    members = ann.http.get("/rooms/r/members").json()["items"]
    assert [(m["user_id"], m["handle"]) for m in members] == [
        (ann.user_id, "ann"),
        (bob.user_id, "bob-b"),
    ]


def test_changing_handles_is_rate_limited(server_factory: ServerFactory) -> None:
    server = server_factory(api_create_burst=3, api_create_rate=0.05)
    api = Api(server)
    try:
        ann = api.user("ann")
        statuses = [ann.http.patch("/me", json={"handle": f"ann{i}"}).status_code for i in range(5)]
        assert statuses == [200] * 3 + [429] * 2
        refused = ann.http.patch("/me", json={"handle": "again"})
        assert_error(refused, 429, "rate_limited")
        assert int(refused.headers["retry-after"]) >= 1
        assert ann.http.get("/me").json()["handle"] == "ann2"
    finally:
        api.close()


def test_bots_get_handles_from_their_names(api: Api) -> None:
    first = collab(api, "user", "create-bot", "Build Bot").stdout.strip()
    second = collab(api, "user", "create-bot", "Build Bot").stdout.strip()
    listed = {
        u["id"]: u["handle"]
        for u in map(json.loads, collab(api, "user", "list", "--json").stdout.splitlines())
    }
    assert listed[first] == "build-bot" and listed[second] == "build-bot-2"
    assert "@build-bot-2" in collab(api, "user", "list").stdout
    token = collab(api, "token", "create", "--user", second).stdout.strip()
    me = api.bearer(api.server.remember(token)).get("/me").json()
    assert me["handle"] == "build-bot-2" and me["via"] == "api_token"
