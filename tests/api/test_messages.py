"""/api/v1/rooms/{room}/messages against a real server: post, reply, edit, delete, react, page
both ways, idempotency, and every refusal (roles, non-members, sizes, malformed, floods)."""

from __future__ import annotations

import concurrent.futures
import json
import socket
import time
from typing import Any

import httpx
import pytest

from tests.api.conftest import Api, assert_error
from tests.support.server import CollabServer, ServerFactory
from tests.support.tokens import seconds_past_exp


def post(client: httpx.Client, room: str, text: str, cid: str, **extra: Any) -> httpx.Response:
    return client.post(f"/rooms/{room}/messages", json={"text": text, "client_id": cid, **extra})


def test_post_reply_edit_react_delete_round_trip(api: Api) -> None:
    alice, bob = api.user("alice"), api.user("bob")
    room = api.room("r", owner=api.dev, **{alice.user_id: "commenter", bob.user_id: "commenter"})
    r = post(alice.http, room, "hello *team*", "a1")
    assert r.status_code == 201, r.text
    first = r.json()
    assert first["seq"] == 1 and first["text"] == "hello *team*" and first["room"] == room
    assert first["author"]["id"] == alice.user_id and first["author"]["name"] == "alice"
    assert first["client_id"] == "a1" and not first["deleted"] and first["thread"] is None
    reply = post(bob.http, room, "hi", "b1", thread=first["id"]).json()
    assert (
        reply["seq"] == 2
        and reply["thread"] == first["id"]
        and "client_id" not in (alice.http.get(f"/rooms/{room}/messages/{reply['id']}").json())
    )
    parent = bob.http.get(f"/rooms/{room}/messages/{first['id']}").json()
    assert parent["reply_count"] == 1 and parent["last_reply_at"] == reply["created_at"]
    thread = alice.http.get(f"/rooms/{room}/messages", params={"thread": first["id"]}).json()
    assert [m["id"] for m in thread["items"]] == [reply["id"]]

    edited = alice.http.patch(f"/rooms/{room}/messages/{first['id']}", json={"text": "hello all"})
    assert edited.status_code == 200 and edited.json()["text"] == "hello all"
    assert edited.json()["edited_at"] is not None
    assert_error(
        bob.http.patch(f"/rooms/{room}/messages/{first['id']}", json={"text": "x"}),
        403,
        "forbidden",
    )
    liked = bob.http.put(f"/rooms/{room}/messages/{first['id']}/reactions/👍")
    assert liked.status_code == 200 and liked.json()["reactions"] == {"👍": [bob.user_id]}
    both = alice.http.put(f"/rooms/{room}/messages/{first['id']}/reactions/%F0%9F%91%8D").json()
    assert both["reactions"] == {"👍": [bob.user_id, alice.user_id]}
    back = bob.http.delete(f"/rooms/{room}/messages/{first['id']}/reactions/👍").json()
    assert back["reactions"] == {"👍": [alice.user_id]}

    assert_error(bob.http.delete(f"/rooms/{room}/messages/{first['id']}"), 403, "forbidden")
    assert alice.http.delete(f"/rooms/{room}/messages/{first['id']}").status_code == 204
    tomb = bob.http.get(f"/rooms/{room}/messages/{first['id']}").json()
    assert tomb["deleted"] and tomb["text"] == "" and tomb["reactions"] == {}
    assert_error(alice.http.patch(f"/rooms/{room}/messages/{first['id']}", json={"text": "x"}), 409)
    assert_error(alice.http.get(f"/rooms/{room}/messages/nope"), 404, "not_found")


def test_a_deleted_thread_root_keeps_its_replies_and_takes_no_new_one(api: Api) -> None:
    alice, bob = api.user("alice"), api.user("bob")
    room = api.room("r", owner=api.dev, **{alice.user_id: "commenter", bob.user_id: "commenter"})
    root = post(alice.http, room, "root", "a1").json()
    reply = post(bob.http, room, "reply", "b1", thread=root["id"]).json()
    assert api.dev.http.delete(f"/rooms/{room}/messages/{root['id']}").status_code == 204
    late = post(bob.http, room, "too late", "b2", thread=root["id"])
    assert_error(late, 409, "conflict")
    assert post(bob.http, room, "reply", "b1", thread=root["id"]).json() == reply  # a retry
    thread = alice.http.get(f"/rooms/{room}/messages", params={"thread": root["id"]}).json()
    assert [m["id"] for m in thread["items"]] == [reply["id"]]
    tomb = alice.http.get(f"/rooms/{room}/messages/{root['id']}").json()
    assert tomb["deleted"] and tomb["reply_count"] == 1
    edited = bob.http.patch(f"/rooms/{room}/messages/{reply['id']}", json={"text": "still here"})
    assert edited.status_code == 200, edited.text


def test_an_owner_may_delete_any_message_and_it_is_audited(api: Api) -> None:
    alice = api.user("alice")
    room = api.room("r", owner=api.dev, **{alice.user_id: "editor"})
    message = post(alice.http, room, "spam", "s1").json()
    assert api.dev.http.delete(f"/rooms/{room}/messages/{message['id']}").status_code == 204
    audit = api.dev.http.get(f"/rooms/{room}/audit").json()["items"]
    deletion = next(e for e in audit if e["action"] == "message.delete")
    assert deletion["target"] == message["id"] and deletion["detail"]["moderated"] is True
    assert deletion["detail"]["author"] == alice.user_id


def test_roles_viewers_read_and_non_members_learn_nothing(api: Api) -> None:
    viewer, outsider = api.user("viewer"), api.user("outsider")
    room = api.room("r", owner=api.dev, **{viewer.user_id: "viewer"})
    message = post(api.dev.http, room, "hi", "d1").json()
    assert viewer.http.get(f"/rooms/{room}/messages").json()["items"][0]["id"] == message["id"]
    assert_error(post(viewer.http, room, "no", "v1"), 403, "forbidden")
    assert_error(viewer.http.put(f"/rooms/{room}/messages/{message['id']}/reactions/x"), 403)
    paths = ["/rooms/r/messages", f"/rooms/r/messages/{message['id']}"]
    for path in paths:
        there = outsider.http.get(path)
        missing = outsider.http.get(path.replace("/rooms/r/", "/rooms/nosuch/"))
        assert there.status_code == missing.status_code == 404
        assert there.json() == missing.json()
    there = post(outsider.http, "r", "x", "o1")
    missing = post(outsider.http, "nosuch", "x", "o1")
    assert there.status_code == missing.status_code == 404 and there.json() == missing.json()
    assert_error(api.anonymous().get("/rooms/r/messages"), 401)
    assert_error(api.bearer("not-a-token").get("/rooms/r/messages"), 401)


def test_a_removed_member_and_a_revoked_token_lose_access_at_once(api: Api) -> None:
    alice = api.user("alice")
    room = api.room("r", owner=api.dev, **{alice.user_id: "commenter"})
    assert post(alice.http, room, "hi", "a1").status_code == 201
    assert api.dev.http.delete(f"/rooms/{room}/members/{alice.user_id}").status_code == 204
    assert_error(post(alice.http, room, "again", "a2"), 404)
    bob = api.user("bob")
    api.dev.http.post(f"/rooms/{room}/members", json={"user_id": bob.user_id, "role": "editor"})
    tokens = bob.http.get("/tokens").json()["items"]
    assert bob.http.delete(f"/tokens/{tokens[0]['id']}").status_code == 204
    assert_error(post(bob.http, room, "hi", "b1"), 401)


def test_bad_bodies_are_refused_precisely(api: Api, server_factory: ServerFactory) -> None:
    room = api.room("r")
    dev = api.dev.http
    assert_error(dev.post("/rooms/r/messages", content=b"{not json"), 400, "bad_request")
    assert_error(dev.post("/rooms/r/messages", json=["a"]), 400, "bad_request")
    assert_error(dev.post("/rooms/r/messages", json={"text": "x"}), 400, "bad_request")
    assert_error(post(dev, room, "", "c"), 400, "bad_request")
    assert_error(post(dev, room, "   \n", "c"), 400, "bad_request")
    assert_error(post(dev, room, "nul\x00", "c"), 400, "bad_request")
    assert_error(dev.post("/rooms/r/messages", json={"text": 5, "client_id": "c"}), 400)
    assert_error(post(dev, room, "x", "has space"), 400, "bad_request")
    assert_error(post(dev, room, "x", "c" * 129), 400, "bad_request")
    assert_error(post(dev, room, "x", "c", thread="nope"), 404, "not_found")
    assert_error(post(dev, room, "x" * 10_001, "c"), 413, "too_large")
    assert post(dev, room, "x" * 10_000, "c").status_code == 201
    huge = dev.post("/rooms/r/messages", content=b"x" * 200_000)
    assert_error(huge, 413, "body_too_large")
    assert_error(dev.put("/rooms/r/messages/nope/reactions/a%20b"), 400, "bad_request")
    assert_error(dev.get("/rooms/r/messages", params={"cursor": "!!"}), 400, "bad_request")
    assert_error(dev.get("/rooms/r/messages", params={"after_seq": "-1"}), 400, "bad_request")
    assert_error(dev.get("/rooms/r/messages", params={"limit": "1000"}), 400, "bad_request")


def test_paging_backwards_with_cursor_and_forwards_with_after_seq(api: Api) -> None:
    room = api.room("r")
    for n in range(1, 8):
        assert post(api.dev.http, room, f"m{n}", f"c{n}").status_code == 201
    seen: list[int] = []
    params: dict[str, Any] = {"limit": 3}
    while True:
        page = api.dev.http.get(f"/rooms/{room}/messages", params=params).json()
        seen = [m["seq"] for m in page["items"]] + seen
        if page["next_cursor"] is None:
            break
        params = {"limit": 3, "cursor": page["next_cursor"]}
    assert seen == list(range(1, 8))
    forward = api.dev.http.get(f"/rooms/{room}/messages", params={"after_seq": 5}).json()
    assert [m["seq"] for m in forward["items"]] == [6, 7] and forward["next_cursor"] is None
    below = api.dev.http.get(f"/rooms/{room}/messages", params={"before_seq": 6, "limit": 3})
    page = below.json()
    assert [m["seq"] for m in page["items"]] == [3, 4, 5] and page["next_cursor"] is not None
    rest = api.dev.http.get(f"/rooms/{room}/messages", params={"cursor": page["next_cursor"]})
    assert [m["seq"] for m in rest.json()["items"]] == [1, 2]
    for bad in ({"before_seq": 0}, {"before_seq": "x"}, {"before_seq": 3, "after_seq": 1}):
        assert_error(api.dev.http.get(f"/rooms/{room}/messages", params=bad), 400, "bad_request")


def test_one_client_id_is_one_message_however_often_it_is_sent(api: Api) -> None:
    alice = api.user("alice")
    room = api.room("r", owner=api.dev, **{alice.user_id: "commenter"})
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: post(alice.http, room, "once", "same"), range(8)))
    assert sorted(r.status_code for r in answers) == [200] * 7 + [201]
    assert len({r.json()["id"] for r in answers}) == 1
    again = post(alice.http, room, "once", "same")
    assert again.status_code == 200 and again.json()["id"] == answers[0].json()["id"]
    other = post(api.dev.http, room, "mine", "same")
    assert other.status_code == 201 and other.json()["id"] != again.json()["id"]
    items = api.dev.http.get(f"/rooms/{room}/messages").json()["items"]
    assert [m["seq"] for m in items] == [1, 2]


def test_a_flood_of_chat_writes_gets_429_with_retry_after(server_factory: ServerFactory) -> None:
    server = server_factory(chat_write_rate=1, chat_write_burst=5)
    api = Api(server)
    try:
        room = api.room("r")
        codes = [post(api.dev.http, room, "x", f"c{n}").status_code for n in range(8)]
        assert codes[:5] == [201] * 5 and set(codes[5:]) == {429}
        limited = post(api.dev.http, room, "x", "late")
        assert_error(limited, 429, "rate_limited")
        assert int(limited.headers["retry-after"]) >= 1
    finally:
        api.close()


@pytest.mark.parametrize("route", ["messages", "messages/x", "messages/x/reactions/y"])
def test_openapi_documents_the_message_routes(server: CollabServer, route: str) -> None:
    spec = httpx.get(server.http_url + "/api/v1/openapi.json").json()
    path = "/api/v1/rooms/{room}/" + route.replace("x", "{message}").replace("y", "{emoji}")
    assert path in spec["paths"]


def test_a_retry_after_a_dropped_connection_posts_once(api: Api) -> None:
    room = api.room("r")
    body = json.dumps({"text": "sent into the void", "client_id": "lost-1"}).encode()
    request = (
        f"POST /api/v1/rooms/{room}/messages HTTP/1.1\r\n"
        f"Host: 127.0.0.1\r\nAuthorization: Bearer {api.server.dev_token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    port = int(api.server.http_url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)  # and hang up before the answer: the client never learns
    retry = post(api.dev.http, room, "sent into the void", "lost-1")
    assert retry.status_code in (200, 201), retry.text
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline:  # the first request may still be in flight
        items = api.dev.http.get(f"/rooms/{room}/messages").json()["items"]
        again = post(api.dev.http, room, "sent into the void", "lost-1")
        assert again.status_code == 200 and again.json()["id"] == retry.json()["id"]
        time.sleep(0.05)
    assert [m["id"] for m in items] == [retry.json()["id"]]


def test_an_expired_room_token_posts_and_reads_nothing(api: Api) -> None:
    api.room("r")
    token = api.server.mint_token(
        "bot", "r", "commenter", ttl=3
    )  # exp is whole seconds: 1 s could be gone before the first call
    by_token = api.bearer(token)
    assert post(by_token, "r", "from a bot", "t1").status_code == 201  # a room token may post
    time.sleep(seconds_past_exp(token))  # the scenario: the token runs out
    assert_error(post(by_token, "r", "too late", "t2"), 401)
    assert_error(by_token.get("/rooms/r/messages"), 401)
    items = api.dev.http.get("/rooms/r/messages").json()["items"]
    assert [m["text"] for m in items] == ["from a bot"]
