"""Mentions and the inbox against a real server (issue 9, Done means 7): a mention reaches the
mentioned members' inboxes only, ``@room`` every member but the author, an entry is read by
id, by "all" or by the room's read marker passing it; and every refusal of the new routes."""

from __future__ import annotations

from typing import Any

import httpx

from tests.api.conftest import Actor, Api, assert_error
from tests.support.server import ServerFactory


def post(client: httpx.Client, room: str, text: str, cid: str, **extra: Any) -> dict[str, Any]:
    r = client.post(f"/rooms/{room}/messages", json={"text": text, "client_id": cid, **extra})
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


def inbox(actor: Actor, **params: Any) -> list[dict[str, Any]]:
    r = actor.http.get("/me/inbox", params=params)
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items


def mentions_in(actor: Actor, room: str) -> int:
    rooms = actor.http.get("/rooms").json()["items"]
    return int(next(r["mentions"] for r in rooms if r["id"] == room))


def test_room_mentions_reach_every_member_but_the_author(api: Api) -> None:
    alice, bob, viewer, outsider = (api.user(n) for n in ("alice", "bob", "viewer", "outsider"))
    roles = {alice.user_id: "commenter", bob.user_id: "editor", viewer.user_id: "viewer"}
    api.room("r", owner=api.dev, **roles)
    api.room("elsewhere", owner=outsider)
    message = post(alice.http, "r", "@room standup in 5", "a1")
    assert set(message["mentions"]) == {api.dev.user_id, bob.user_id, viewer.user_id}
    for actor in (api.dev, bob, viewer):
        items = inbox(actor)
        assert [(i["room"], i["message"]["id"], i["read"]) for i in items] == [
            ("r", message["id"], False)
        ]
        assert items[0]["message"]["text"] == "@room standup in 5"
        assert "client_id" not in items[0]["message"]
        assert isinstance(items[0]["id"], str) and items[0]["created_at"] > 0
        assert mentions_in(actor, "r") == 1
    assert inbox(alice) == [] and mentions_in(alice, "r") == 0
    assert inbox(outsider) == []
    # Viewers read and are notified, but cannot post.
    r = viewer.http.post("/rooms/r/messages", json={"text": "@room hi", "client_id": "v1"})
    assert_error(r, 403, "forbidden")
    quoted = post(bob.http, "r", "type `@room` to call everyone", "b1")
    assert quoted["mentions"] == [] and len(inbox(api.dev)) == 1


def test_a_handle_mention_reaches_that_member_only(api: Api) -> None:
    alice, bob, carol, outsider = (api.user(n) for n in ("alice", "bob", "carol", "outsider"))
    roles = {alice.user_id: "commenter", bob.user_id: "viewer", carol.user_id: "editor"}
    api.room("r", owner=api.dev, **roles)
    api.room("o", owner=outsider)
    assert bob.http.get("/me").json()["handle"] == "bob"
    text = "@Bob see this, @outsider too; mail carol@example.com, `@carol` and @alice"
    message = post(alice.http, "r", text, "a1")
    assert message["mentions"] == [bob.user_id]  # not the outsider, not the author, no carol
    assert [i["message"]["id"] for i in inbox(bob)] == [message["id"]]
    for actor in (alice, carol, outsider, api.dev):
        assert inbox(actor) == [], actor.user_id
    assert mentions_in(bob, "r") == 1 and mentions_in(carol, "r") == 0
    # A handle changed since: the new one names the member, the old one nobody.
    assert carol.http.patch("/me", json={"handle": "caro.l"}).status_code == 200
    again = post(alice.http, "r", "@carol? @caro.l. @nobody", "a2")
    assert again["mentions"] == [carol.user_id]
    assert [i["message"]["id"] for i in inbox(carol)] == [again["id"]]


def test_an_edit_that_adds_a_mention_notifies_once(api: Api) -> None:
    alice, bob = api.user("alice"), api.user("bob")
    api.room("r", owner=api.dev, **{alice.user_id: "commenter", bob.user_id: "viewer"})
    message = post(alice.http, "r", "lunch?", "a1")
    assert message["mentions"] == [] and inbox(bob) == []
    path = f"/rooms/r/messages/{message['id']}"
    edited = alice.http.patch(path, json={"text": "lunch? @room"}).json()
    assert set(edited["mentions"]) == {api.dev.user_id, bob.user_id}
    assert [i["message"]["text"] for i in inbox(bob)] == ["lunch? @room"]
    bob.http.post("/me/inbox/read", json={"all": True})
    alice.http.patch(path, json={"text": "lunch?? @room"})
    alice.http.patch(path, json={"text": "never mind"})
    assert [(i["message"]["text"], i["read"]) for i in inbox(bob)] == [("never mind", True)]
    assert alice.http.get(path).json()["mentions"] == []


def test_entries_are_read_by_id_by_all_and_by_the_read_marker(api: Api) -> None:
    alice, bob = api.user("alice"), api.user("bob")
    api.room("r", owner=api.dev, **{alice.user_id: "commenter", bob.user_id: "viewer"})
    api.room("s", owner=api.dev, **{alice.user_id: "commenter", bob.user_id: "viewer"})
    posted = [post(alice.http, room, f"@room {n}", f"a{n}") for n, room in enumerate("rrrss")]
    items = inbox(bob)
    assert [i["message"]["id"] for i in items] == [m["id"] for m in reversed(posted)]
    page = bob.http.get("/me/inbox", params={"limit": 2}).json()
    rest = bob.http.get("/me/inbox", params={"cursor": page["next_cursor"]}).json()
    assert page["items"] + rest["items"] == items and rest["next_cursor"] is None

    r = bob.http.post("/me/inbox/read", json={"ids": [items[0]["id"], items[0]["id"], "999999"]})
    assert r.status_code == 200 and r.json() == {"marked": 1}
    assert len(inbox(bob, unread=1)) == 4
    assert alice.http.post("/me/inbox/read", json={"ids": [items[1]["id"]]}).json() == {
        "marked": 0
    }  # someone else's entry: untouched
    assert bob.http.post("/rooms/r/read", json={"up_to": 2}).status_code == 200
    unread = [i["message"]["seq"] for i in inbox(bob, unread=1) if i["room"] == "r"]
    assert unread == [3] and mentions_in(bob, "r") == 1 and mentions_in(bob, "s") == 1
    assert bob.http.post("/me/inbox/read", json={"all": True}).json() == {"marked": 2}
    assert inbox(bob, unread=1) == [] and len(inbox(bob)) == 5
    assert mentions_in(api.dev, "r") == 3


def test_leaving_a_room_hides_its_entries_and_deleting_a_message_drops_them(api: Api) -> None:
    alice, bob = api.user("alice"), api.user("bob")
    api.room("r", owner=api.dev, **{alice.user_id: "commenter", bob.user_id: "viewer"})
    api.room("s", owner=api.dev, **{alice.user_id: "commenter", bob.user_id: "viewer"})
    kept, gone = post(alice.http, "r", "@room a", "a1"), post(alice.http, "r", "@room b", "a2")
    there = post(alice.http, "s", "@room c", "a3")
    assert len(inbox(bob)) == 3
    assert api.dev.http.delete(f"/rooms/r/messages/{gone['id']}").status_code == 204
    assert [i["message"]["id"] for i in inbox(bob)] == [there["id"], kept["id"]]
    assert api.dev.http.delete(f"/rooms/s/members/{bob.user_id}").status_code == 204
    assert [i["message"]["id"] for i in inbox(bob)] == [kept["id"]]
    assert api.dev.http.delete("/rooms/r").status_code == 204
    assert inbox(bob) == []


def test_inbox_refusals(api: Api, server_factory: ServerFactory) -> None:
    alice = api.user("alice")
    api.room("r", owner=api.dev, **{alice.user_id: "viewer"})
    post(api.dev.http, "r", "@room", "d1")
    for client in (api.anonymous(), api.bearer("not-a-token")):
        assert_error(client.get("/me/inbox"), 401)
        assert_error(client.post("/me/inbox/read", json={"all": True}), 401)
    room_token = api.bearer(api.server.mint_token("alice", "r", "viewer"))
    assert_error(room_token.get("/me/inbox"), 403, "forbidden")  # a room's credential
    assert_error(room_token.post("/me/inbox/read", json={"all": True}), 403, "forbidden")
    read = alice.http.post
    for body in (
        {},
        {"all": False},
        {"all": True, "ids": []},
        {"ids": "1"},
        {"ids": [1]},
        {"ids": ["-1"]},
        {"ids": ["1e3"]},
        {"ids": ["x"] * 3},
        {"ids": ["1"] * 201},
        {"all": "yes"},
    ):
        assert_error(read("/me/inbox/read", json=body), 400, "bad_request")
    assert read("/me/inbox/read", json={"ids": ["9" * 40]}).json() == {"marked": 0}
    assert_error(read("/me/inbox/read", content=b"{nope"), 400, "bad_request")
    assert_error(read("/me/inbox/read", content=b"x" * 100_000), 413, "body_too_large")
    for params in ({"cursor": "!!"}, {"unread": "2"}, {"limit": "0"}, {"cursor": "WyJ4Il0"}):
        assert_error(alice.http.get("/me/inbox", params=params), 400, "bad_request")
    tokens = alice.http.get("/tokens").json()["items"]
    assert alice.http.delete(f"/tokens/{tokens[0]['id']}").status_code == 204
    assert_error(alice.http.get("/me/inbox"), 401)

    server = server_factory(chat_write_rate=1, chat_write_burst=5)
    flooded = Api(server)
    try:
        codes = [
            flooded.dev.http.post("/me/inbox/read", json={"all": True}).status_code
            for _ in range(8)
        ]
        assert codes[:5] == [200] * 5 and set(codes[5:]) == {429}
    finally:
        flooded.close()
