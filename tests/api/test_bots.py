"""Bots as room members through the API (``/rooms/{room}/bots``, issue 14): made by owners,
answered with their first token once, acting (and audited) as themselves, removed for good;
attacked as every route is (non-members, roles, credentials, bodies, floods)."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from tests.api.conftest import Api, assert_error
from tests.support.rawpeer import RawPeer
from tests.support.server import ServerFactory

pytestmark = pytest.mark.anyio


def make_bot(api: Api, room: str, name: str = "rollbot", role: str = "commenter") -> dict[str, Any]:
    r = api.dev.http.post(f"/rooms/{room}/bots", json={"name": name, "role": role})
    assert r.status_code == 201, r.text
    found: dict[str, Any] = r.json()
    api.server.remember(found["token"])
    return found


async def test_an_owner_adds_a_bot_that_acts_and_is_audited_as_itself(api: Api) -> None:
    room = api.room("r")
    made = make_bot(api, room, "Roll Bot", "editor")
    bot = made["bot"]
    assert bot["name"] == "Roll Bot" and bot["handle"] == "roll-bot" and bot["role"] == "editor"
    assert bot["room"] == room and bot["created_by"] == api.dev.user_id
    as_bot = api.bearer(made["token"])
    assert as_bot.get("/me").json()["id"] == bot["id"]
    members = api.dev.http.get(f"/rooms/{room}/members").json()["items"]
    assert {"user_id": bot["id"], "role": "editor"}.items() <= next(
        m for m in members if m["user_id"] == bot["id"]
    ).items()
    posted = as_bot.post(f"/rooms/{room}/messages", json={"text": "beep", "client_id": "b1"})
    assert posted.status_code == 201 and posted.json()["author"]["id"] == bot["id"]
    assert as_bot.delete(f"/rooms/{room}/messages/{posted.json()['id']}").status_code == 204
    audit = api.dev.http.get(f"/rooms/{room}/audit").json()["items"]
    deletion = next(e for e in audit if e["action"] == "message.delete")
    assert deletion["actor"] == bot["id"], "a bot's action is audited as the bot"
    created = next(e for e in audit if e["action"] == "bot.create")
    assert created["actor"] == api.dev.user_id and created["target"] == bot["id"]
    assert made["token"] not in str(audit)
    listed = api.dev.http.get(f"/rooms/{room}/bots").json()["items"]
    assert [b["id"] for b in listed] == [bot["id"]]
    # Its sockets work like anyone's.
    with anyio.fail_after(10):
        peer = await RawPeer.connect(api.server.ws_url(room, "notes", token=made["token"]))
        await peer.close()


async def test_removing_a_bot_kills_its_tokens_and_sockets(api: Api) -> None:
    room = api.room("r")
    made = make_bot(api, room)
    bot_id = made["bot"]["id"]
    second = api.dev.http.post(f"/rooms/{room}/bots/{bot_id}/tokens")
    assert second.status_code == 201
    other_token = api.server.remember(second.json()["token"])
    assert api.bearer(other_token).get("/me").status_code == 200
    with anyio.fail_after(10):
        peer = await RawPeer.connect(api.server.ws_url(room, "chat", token=made["token"]))
        assert api.dev.http.delete(f"/rooms/{room}/bots/{bot_id}").status_code == 204
        await peer.closed.wait()
        assert peer.close_code == 4401
    for token in (made["token"], other_token):
        assert_error(api.bearer(token).get("/me"), 401)
    assert api.dev.http.get(f"/rooms/{room}/bots").json()["items"] == []
    members = api.dev.http.get(f"/rooms/{room}/members").json()["items"]
    assert bot_id not in {m["user_id"] for m in members}
    assert_error(api.dev.http.delete(f"/rooms/{room}/bots/{bot_id}"), 404)
    assert_error(api.dev.http.post(f"/rooms/{room}/bots/{bot_id}/tokens"), 404)
    audit = api.dev.http.get(f"/rooms/{room}/audit").json()["items"]
    assert any(e["action"] == "bot.delete" and e["target"] == bot_id for e in audit)


def test_only_the_rooms_owners_and_only_its_own_bots(api: Api) -> None:
    alice, editor, outsider = api.user("alice"), api.user("editor"), api.user("outsider")
    room = api.room("r", owner=api.dev, **{editor.user_id: "editor"})
    api.room("mine", owner=alice)
    made = make_bot(api, room)
    bot_id = made["bot"]["id"]
    body = {"name": "x", "role": "viewer"}
    for path in ("/rooms/r/bots", "/rooms/nosuch/bots"):
        assert_error(outsider.http.post(path, json=body), 404, "not_found")
        assert_error(outsider.http.get(path), 404, "not_found")
    assert outsider.http.post("/rooms/r/bots", json=body).json() == (
        outsider.http.post("/rooms/nosuch/bots", json=body).json()
    )
    assert_error(editor.http.post("/rooms/r/bots", json=body), 403, "forbidden")
    assert_error(editor.http.get("/rooms/r/bots"), 403, "forbidden")
    assert_error(editor.http.delete(f"/rooms/r/bots/{bot_id}"), 403, "forbidden")
    assert_error(editor.http.post(f"/rooms/r/bots/{bot_id}/tokens"), 403, "forbidden")
    # Another room's owner cannot reach this room's bot through their own room.
    assert_error(alice.http.delete(f"/rooms/mine/bots/{bot_id}"), 404)
    assert_error(alice.http.post(f"/rooms/mine/bots/{bot_id}/tokens"), 404)
    # Nor is any plain member a "bot" to delete.
    assert_error(api.dev.http.delete(f"/rooms/r/bots/{editor.user_id}"), 404)
    # A room token (even an owner's) is not a personal credential.
    owner_room_token = api.dev.http.post("/rooms/r/tokens", json={}).json()["token"]
    api.server.remember(owner_room_token)
    assert_error(api.bearer(owner_room_token).post("/rooms/r/bots", json=body), 403)
    # A bot's own token cannot make bots (it is no owner).
    assert_error(api.bearer(made["token"]).post("/rooms/r/bots", json=body), 403)
    # Revoked and missing credentials.
    token_id = editor.http.get("/tokens").json()["items"][0]["id"]
    editor.http.delete(f"/tokens/{token_id}")
    assert_error(editor.http.post("/rooms/r/bots", json=body), 401)
    assert_error(api.anonymous().post("/rooms/r/bots", json=body), 401)
    # Not in a DM.
    dm = alice.http.post("/dms", json={"user": api.dev.user_id}).json()["id"]
    assert_error(alice.http.post(f"/rooms/{dm}/bots", json=body), 409, "conflict")


def test_bad_bodies(api: Api) -> None:
    api.room("r")
    dev = api.dev.http
    assert_error(dev.post("/rooms/r/bots", content=b"{nope"), 400, "bad_request")
    assert_error(dev.post("/rooms/r/bots", json=["x"]), 400, "bad_request")
    assert_error(dev.post("/rooms/r/bots", json={}), 400, "bad_request")
    assert_error(dev.post("/rooms/r/bots", json={"name": "  "}), 400, "bad_request")
    assert_error(dev.post("/rooms/r/bots", json={"name": "x" * 65}), 400, "bad_request")
    assert_error(dev.post("/rooms/r/bots", json={"name": "a\nb"}), 400, "bad_request")
    assert_error(dev.post("/rooms/r/bots", json={"name": 5}), 400, "bad_request")
    assert_error(dev.post("/rooms/r/bots", json={"name": "x", "role": "god"}), 400)
    assert_error(dev.post("/rooms/r/bots", content=b"x" * 70_000), 413, "body_too_large")
    assert_error(dev.post("/rooms/bad name/bots", json={"name": "x"}), 400)
    assert dev.get("/rooms/r/bots").json()["items"] == []


def test_making_bots_is_rate_limited(server_factory: ServerFactory) -> None:
    server = server_factory(api_create_burst=3, api_create_rate=0.05)
    api = Api(server)
    api.room("r")
    statuses = []
    for i in range(5):
        r = api.dev.http.post("/rooms/r/bots", json={"name": f"b{i}"})
        if r.status_code == 201:
            server.remember(r.json()["token"])
        statuses.append(r.status_code)
    # One member token went to creating nothing else: the room's members bucket is shared.
    assert statuses == [201, 201, 201, 429, 429]
    assert int(api.dev.http.post("/rooms/r/bots", json={"name": "z"}).headers["retry-after"]) >= 1
    api.close()
