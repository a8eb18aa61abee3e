"""Incoming webhooks (issue 14, Done 4): an outside system posts into a room's chat as a bot
by URL; a wrong secret is 401 and posts nothing; a revoked URL is 404; the secret never
reaches a log line; floods are refused; the management routes are attacked like any."""

from __future__ import annotations

from typing import Any

import anyio
import httpx
import pytest
from pycrdt import Map

from tests.api.conftest import Api, assert_error
from tests.support.pyclient import provider
from tests.support.server import ServerFactory

pytestmark = pytest.mark.anyio


def make_hook(api: Api, room: str, name: str = "CI") -> dict[str, Any]:
    r = api.dev.http.post(f"/rooms/{room}/hooks", json={"name": name})
    assert r.status_code == 201, r.text
    found: dict[str, Any] = r.json()
    api.server.remember(found["path"].rsplit(".", 1)[1])  # the secret: never in the log
    return found


def outside(api: Api) -> httpx.Client:
    """The outside system: no credential but the URL."""
    return httpx.Client(base_url=api.server.http_url, timeout=10)


async def test_a_post_by_url_appears_in_chat_as_the_bot(server_factory: ServerFactory) -> None:
    server = server_factory(log_level="debug")  # every request line, every header: no secret
    api = Api(server)
    room = api.room("r")
    hook = make_hook(api, room, "Build Bot")
    assert hook["url"] == server.http_url + hook["path"]
    assert hook["path"].startswith("/api/v1/hooks/" + hook["id"] + ".")
    with outside(api) as web:
        r = web.post(hook["path"], json={"text": "build #12 passed ✅", "client_id": "b12"})
        assert r.status_code == 201, r.text
        message = r.json()
        assert message["author"]["id"] == hook["bot"]
        assert message["author"]["name"] == "Build Bot"
        again = web.post(hook["path"], json={"text": "build #12 passed ✅", "client_id": "b12"})
        assert again.status_code == 200 and again.json()["id"] == message["id"]
    async with provider(server.ws_url(room, "chat")) as (doc, _):
        messages = doc.get("messages", type=Map).to_py() or {}
        assert [m["text"] for m in messages.values()] == ["build #12 passed ✅"]
        assert next(iter(messages.values()))["author"]["id"] == hook["bot"]
    members = api.dev.http.get(f"/rooms/{room}/members").json()["items"]
    assert {"user_id": hook["bot"], "role": "commenter"}.items() <= next(
        m for m in members if m["user_id"] == hook["bot"]
    ).items()
    listed = api.dev.http.get(f"/rooms/{room}/hooks").json()["items"]
    assert [h["id"] for h in listed] == [hook["id"]] and listed[0]["last_used_at"] is not None
    assert "url" not in listed[0] and "path" not in listed[0]
    secret = hook["path"].rsplit(".", 1)[1]
    assert secret not in server.log() and "/api/v1/hooks/***" in server.log()
    api.close()


def test_a_wrong_secret_is_401_and_a_revoked_hook_404(api: Api) -> None:
    room = api.room("r")
    hook = make_hook(api, room)
    wrong = hook["path"][:-4] + "AAAA"
    with outside(api) as web:
        assert_error(web.post(wrong, json={"text": "forged"}), 401, "unauthorized")
        assert_error(web.post("/api/v1/hooks/" + "0" * 32 + ".x", json={"text": "x"}), 404)
        assert_error(web.post("/api/v1/hooks/not-a-hook", json={"text": "x"}), 404)
        assert_error(web.post("/api/v1/hooks/" + hook["id"], json={"text": "x"}), 404)
        assert api.dev.http.get(f"/rooms/{room}/messages").json()["items"] == []
        assert api.dev.http.delete(f"/rooms/{room}/hooks/{hook['id']}").status_code == 204
        assert_error(web.post(hook["path"], json={"text": "after"}), 404, "not_found")
        assert api.dev.http.delete(f"/rooms/{room}/hooks/{hook['id']}").status_code == 204
    assert api.dev.http.get(f"/rooms/{room}/messages").json()["items"] == []
    listed = api.dev.http.get(f"/rooms/{room}/hooks").json()["items"]
    assert listed[0]["revoked"] is True
    audit = api.dev.http.get(f"/rooms/{room}/audit").json()["items"]
    actions = [e["action"] for e in audit]
    assert "hook.create" in actions and "hook.revoke" in actions
    assert hook["path"].rsplit(".", 1)[1] not in str(audit)


def test_bodies_roles_and_a_removed_bot(api: Api) -> None:
    room = api.room("r")
    hook = make_hook(api, room)
    path = hook["path"]
    with outside(api) as web:
        assert_error(web.post(path, content=b"{nope"), 400, "bad_request")
        assert_error(web.post(path, json=["x"]), 400, "bad_request")
        assert_error(web.post(path, json={}), 400, "bad_request")
        assert_error(web.post(path, json={"text": "  "}), 400, "bad_request")
        assert_error(web.post(path, json={"text": 5}), 400, "bad_request")
        assert_error(web.post(path, json={"text": "x" * 10_001}), 413, "too_large")
        assert_error(web.post(path, content=b"x" * 70_000), 413, "body_too_large")
        assert_error(web.get(path), 405)
        # The bot demoted to viewer: it may no longer post (403), nothing is posted.
        r = api.dev.http.patch(f"/rooms/{room}/members/{hook['bot']}", json={"role": "viewer"})
        assert r.status_code == 200, r.text
        assert_error(web.post(path, json={"text": "hi"}), 403, "forbidden")
        api.dev.http.delete(f"/rooms/{room}/members/{hook['bot']}")
        assert_error(web.post(path, json={"text": "hi"}), 403, "forbidden")
    assert api.dev.http.get(f"/rooms/{room}/messages").json()["items"] == []


def test_managing_hooks_takes_an_owner(api: Api) -> None:
    editor, outsider = api.user("editor"), api.user("outsider")
    api.room("r", owner=api.dev, **{editor.user_id: "editor"})
    hook = make_hook(api, "r")
    for room in ("r", "nosuch"):
        assert_error(outsider.http.post(f"/rooms/{room}/hooks", json={"name": "x"}), 404)
        assert_error(outsider.http.get(f"/rooms/{room}/hooks"), 404)
        assert_error(outsider.http.delete(f"/rooms/{room}/hooks/{hook['id']}"), 404)
    assert_error(editor.http.post("/rooms/r/hooks", json={"name": "x"}), 403, "forbidden")
    assert_error(editor.http.get("/rooms/r/hooks"), 403)
    assert_error(editor.http.delete(f"/rooms/r/hooks/{hook['id']}"), 403)
    assert_error(api.dev.http.delete("/rooms/r/hooks/nosuch"), 404)
    assert_error(api.dev.http.post("/rooms/r/hooks", json={}), 400)
    assert_error(api.dev.http.post("/rooms/r/hooks", content=b"x" * 70_000), 413)
    assert_error(api.anonymous().post("/rooms/r/hooks", json={"name": "x"}), 401)
    room_token = api.server.remember(api.dev.http.post("/rooms/r/tokens", json={}).json()["token"])
    # An owner's room token stands for the owner within the room, not as its manager: no
    # management route (the list included) takes one (docs/integrations.md).
    assert_error(api.bearer(room_token).post("/rooms/r/hooks", json={"name": "x"}), 403)
    assert_error(api.bearer(room_token).get("/rooms/r/hooks"), 403, "forbidden")
    alice = api.user("alice")
    dm = alice.http.post("/dms", json={"user": api.dev.user_id}).json()["id"]
    assert_error(alice.http.post(f"/rooms/{dm}/hooks", json={"name": "x"}), 409)


def test_floods_are_refused(server_factory: ServerFactory) -> None:
    server = server_factory(
        chat_write_burst=3, chat_write_rate=0.05, auth_failure_burst=3, auth_failure_rate=0.01
    )
    api = Api(server)
    api.room("r")
    hook = make_hook(api, "r")
    with outside(api) as web:
        posts = [web.post(hook["path"], json={"text": f"m{i}"}).status_code for i in range(5)]
        assert posts == [201, 201, 201, 429, 429]
        assert int(web.post(hook["path"], json={"text": "x"}).headers["retry-after"]) >= 1
        wrong = hook["path"][:-4] + "AAAA"
        guesses = [web.post(wrong, json={"text": "x"}).status_code for _ in range(5)]
        assert guesses == [401, 401, 401, 429, 429]
        # Guessing costs the guesser's address: the right URL is refused unchecked there too.
        assert_error(web.post(hook["path"], json={"text": "x"}), 429)
    api.close()


async def test_hook_posts_reach_a_client_listening(server_factory: ServerFactory) -> None:
    from collab.client import Client

    server = server_factory()
    api = Api(server)
    bot = api.user("listener")
    room = api.room("r", owner=api.dev, **{bot.user_id: "viewer"})
    hook = make_hook(api, room)
    async with Client(server.http_url, bot.token) as client:
        chat = client.room(room)
        with anyio.fail_after(15):
            stream = chat.messages(after_seq=0)
            with outside(api) as web:
                assert web.post(hook["path"], json={"text": "deployed"}).status_code == 201
            async for message in stream:
                assert message.text == "deployed" and message.author.id == hook["bot"]
                break
    api.close()
