"""/api/v1/rooms/{room}/messages at its edges: a lone surrogate, emoji sequences with joiners,
a retry after its attachment was removed, a cursor out of range (each found in review), a
flood of distinct reactions."""

from __future__ import annotations

from typing import Any

import httpx

from collab.api.parsing import encode_cursor
from collab.meta import MAX_REACTIONS
from tests.api.conftest import Api, assert_error


def post(client: httpx.Client, room: str, cid: str, **body: Any) -> httpx.Response:
    return client.post(f"/rooms/{room}/messages", json={"client_id": cid, **body})


def raw_json(client: httpx.Client, method: str, path: str, body: str) -> httpx.Response:
    """A JSON body spelled exactly (a lone surrogate escape is valid JSON text)."""
    headers = {"content-type": "application/json"}
    return client.request(method, path, content=body.encode(), headers=headers)


def test_a_lone_surrogate_is_refused_as_bad_request_not_a_500(api: Api) -> None:
    """A lone surrogate escape ('\\ud800') is valid JSON text but no string a store or a
    client can take: the post, the edit and the thread are refused 400 (before: 500, the
    store's binding failing inside the write)."""
    alice = api.user("alice")
    room = api.room("r", owner=api.dev, **{alice.user_id: "commenter"})
    path = f"/rooms/{room}/messages"
    first = post(alice.http, room, "ok", text="fine")
    assert first.status_code == 201
    message_id = first.json()["id"]
    text = raw_json(alice.http, "POST", path, '{"text": "a\\ud800b", "client_id": "s1"}')
    thread = raw_json(
        alice.http, "POST", path, '{"text": "a", "client_id": "s2", "thread": "\\ud800"}'
    )
    edit = raw_json(alice.http, "PATCH", f"{path}/{message_id}", '{"text": "\\udc00"}')
    for response in (text, thread, edit):
        assert response.status_code < 500, response.text
        assert_error(response, 400, "bad_request")


def test_a_standard_zwj_emoji_is_a_reaction(api: Api) -> None:
    """Standard emoji sequences joined by U+200D ZERO WIDTH JOINER (❤️‍🔥, 🏳️‍🌈, 👨‍👩‍👧), which is
    not "printable" to Python, are reactions like any other (before: 400)."""
    alice = api.user("alice")
    room = api.room("r", owner=api.dev, **{alice.user_id: "commenter"})
    message = post(alice.http, room, "m1", text="hot").json()
    for emoji in ("❤️\u200d🔥", "🏳️\u200d🌈", "👨\u200d👩\u200d👧"):
        r = alice.http.put(f"/rooms/{room}/messages/{message['id']}/reactions/{emoji}")
        assert r.status_code == 200, (emoji, r.text)
        assert alice.user_id in r.json()["reactions"][emoji]


def test_a_flood_of_distinct_reactions_stops_at_the_cap(api: Api) -> None:
    """Each distinct emoji is a key of the message in the live chat doc, which every reader
    keeps: a message holds at most MAX_REACTIONS of them (before: any number)."""
    alice = api.user("alice")
    room = api.room("r", owner=api.dev, **{alice.user_id: "commenter"})
    path = f"/rooms/{room}/messages/{post(alice.http, room, 'm1', text='vote').json()['id']}"
    emoji = [chr(0x1F600 + n) for n in range(MAX_REACTIONS + 1)]
    for one in emoji[:MAX_REACTIONS]:
        assert alice.http.put(f"{path}/reactions/{one}").status_code == 200
    assert_error(alice.http.put(f"{path}/reactions/{emoji[-1]}"), 403, "limit_reached")
    both = api.dev.http.put(f"{path}/reactions/{emoji[0]}")  # one already there: still fine
    assert both.status_code == 200 and len(both.json()["reactions"]) == MAX_REACTIONS


def test_a_retry_answers_the_message_after_its_attachment_was_removed(api: Api) -> None:
    """docs/chat.md, Idempotency: a retry (an outbox after a long weekend) 'yields one message,
    and the answer is that message', also when the file it attached was removed from the room
    since (before: 400 "no such file", and the client took its posted message for a failed
    one)."""
    alice = api.user("alice")
    room = api.room("r", owner=api.dev, **{alice.user_id: "commenter"})
    r = alice.http.post(f"/rooms/{room}/files", files={"file": ("a.txt", b"hello\n")})
    assert r.status_code == 201, r.text
    file_id = r.json()["id"]
    body = {"text": "see file", "attachments": [file_id]}
    first = post(alice.http, room, "out-1", **body)
    assert first.status_code == 201, first.text  # its answer is lost on the way
    assert alice.http.delete(f"/rooms/{room}/files/{file_id}").status_code == 204
    retry = post(alice.http, room, "out-1", **body)
    assert retry.status_code == 200, retry.text
    assert retry.json()["id"] == first.json()["id"]


def test_a_cursor_out_of_range_is_a_bad_request_not_a_500(api: Api) -> None:
    """A cursor holding a number no seq can be is a bad request (before: 500, the store
    unable to bind it)."""
    room = api.room("r")
    assert post(api.dev.http, room, "c1", text="one").status_code == 201
    for value in (2**64, -(2**64)):
        cursor = encode_cursor([value])
        r = api.dev.http.get(f"/rooms/{room}/messages", params={"cursor": cursor})
        assert r.status_code < 500, r.text
        assert_error(r, 400, "bad_request")
