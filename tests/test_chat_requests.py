"""Chat requests (type 101) and replies (102) on the chat socket of a real server: the API's
semantics, idempotency across both doors, roles as they change, and who receives replies."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
from pycrdt import Map
from websockets.exceptions import ConnectionClosed

from tests.api.conftest import Api
from tests.support.jspeer import JsPeer
from tests.support.pyclient import provider
from tests.support.rawpeer import RawPeer
from tests.support.server import CollabServer, ServerFactory
from tests.test_chat import doc_messages, post, rendered, wait_doc

pytestmark = pytest.mark.anyio


async def chat_socket(
    server: CollabServer, room: str, token: str, query: str = "collab=1"
) -> RawPeer:
    return await RawPeer.connect(server.ws_url(room, "chat", query, token=token))


def ok(reply: dict[str, Any], client_id: str) -> dict[str, Any]:
    assert set(reply) == {"client_id", "id", "seq"} and reply["client_id"] == client_id, reply
    return reply


def refused(reply: dict[str, Any], code: str) -> None:
    assert set(reply) == {"client_id", "error"} and reply["error"]["code"] == code, reply
    assert isinstance(reply["error"]["message"], str)


async def test_requests_post_reply_edit_react_delete_as_the_api_does(server: CollabServer) -> None:
    api = Api(server)
    alice, bob = api.user("alice"), api.user("bob")
    room = api.room("r", owner=api.dev, **{alice.user_id: "commenter", bob.user_id: "commenter"})
    a = await chat_socket(server, room, alice.token)
    async with provider(server.ws_url(room, "chat", token=bob.token)) as (bobs, _):
        first = ok(await a.ask({"op": "post", "client_id": "a1", "text": "hello"}), "a1")
        assert first["seq"] == 1
        assert first["id"] in doc_messages(a.doc)  # the doc's update comes before the reply
        reply = await a.ask({"op": "post", "client_id": "a2", "text": "re", "thread": first["id"]})
        assert ok(reply, "a2")["seq"] == 2
        edit = {"op": "edit", "client_id": "a3", "id": first["id"], "text": "hello!"}
        assert ok(await a.ask(edit), "a3") == {"client_id": "a3", "id": first["id"], "seq": 1}
        for n, (op, emoji) in enumerate([("react", "🎉"), ("unreact", "🎉"), ("react", "👍")]):
            request = {"op": op, "client_id": f"r{n}", "id": first["id"], "emoji": emoji}
            assert ok(await a.ask(request), f"r{n}")["id"] == first["id"]
        gone = ok(await a.ask({"op": "post", "client_id": "a4", "text": "oops"}), "a4")
        deleted = ok(await a.ask({"op": "delete", "client_id": "a5", "id": gone["id"]}), "a5")
        assert (deleted["id"], deleted["seq"]) == (gone["id"], 3)
        want = [
            (1, alice.user_id, "hello!", False, {"👍": [alice.user_id]}),
            (2, alice.user_id, "re", False, {}),
            (3, alice.user_id, "", True, {}),
        ]
        items = alice.http.get(f"/rooms/{room}/messages").json()["items"]
        assert [
            (m["seq"], m["author"]["id"], m["text"], m["deleted"], m["reactions"]) for m in items
        ] == want
        assert items[1]["thread"] == first["id"] and items[0]["reply_count"] == 1
        assert items[0]["client_id"] == "a1" and items[0]["author"]["name"] == "alice"
        await wait_doc(bobs, lambda m: rendered(m) == want)  # another client sees it all
        await wait_doc(a.doc, lambda m: rendered(m) == want)
    audit = api.dev.http.get(f"/rooms/{room}/audit").json()["items"]
    deletion = next(e for e in audit if e["action"] == "message.delete")
    assert deletion["target"] == gone["id"] and deletion["actor"] == alice.user_id
    assert deletion["detail"] == {"author": alice.user_id, "moderated": False}
    assert a.close_code is None
    await a.close()
    api.close()


async def test_one_message_per_client_id_on_the_socket_and_across_both_doors(
    server: CollabServer,
) -> None:
    api = Api(server)
    alice, bob = api.user("alice"), api.user("bob")
    room = api.room("r", owner=api.dev, **{alice.user_id: "commenter", bob.user_id: "commenter"})
    a = await chat_socket(server, room, alice.token)
    twice = {"op": "post", "client_id": "c1", "text": "once"}
    await a.send_request(twice)
    await a.send_request(twice)  # at once: the first is not answered yet
    await a.wait_for(lambda: len(a.replies("c1")) == 2)
    first, second = a.replies("c1")
    assert ok(first, "c1") == second
    await a.send_request({"op": "post", "client_id": "c2", "text": "both doors"})
    over_http = post(alice.http, room, "both doors", "c2")  # while the socket's is in flight
    await a.wait_for(lambda: len(a.replies("c2")) == 1)
    assert ok(a.replies("c2")[0], "c2")["id"] == over_http["id"]
    again = alice.http.post(f"/rooms/{room}/messages", json={"text": "x", "client_id": "c1"})
    assert again.status_code == 200 and again.json()["id"] == first["id"]  # HTTP replays it
    b = await chat_socket(server, room, bob.token)
    bobs = ok(await b.ask({"op": "post", "client_id": "c1", "text": "mine"}), "c1")
    assert bobs["id"] != first["id"]  # another author's same client id is another message
    items = api.dev.http.get(f"/rooms/{room}/messages").json()["items"]
    assert [m["text"] for m in items] == ["once", "both doors", "mine"]
    for peer in (a, b):
        await peer.close()
    api.close()


async def test_roles_decide_at_request_time_and_refusals_keep_the_socket(
    server: CollabServer,
) -> None:
    api = Api(server)
    viewer, alice, bob = api.user("viewer"), api.user("alice"), api.user("bob")
    members = {viewer.user_id: "viewer", alice.user_id: "commenter", bob.user_id: "editor"}
    room = api.room("r", owner=api.dev, **members)
    alices = post(alice.http, room, "alice's", "a1")
    v = await chat_socket(server, room, viewer.token)
    refused(await v.ask({"op": "post", "client_id": "v1", "text": "no"}), "forbidden")
    react = {"op": "react", "client_id": "v2", "id": alices["id"], "emoji": "👍"}
    refused(await v.ask(react), "forbidden")
    b = await chat_socket(server, room, bob.token)
    edit = {"op": "edit", "client_id": "b1", "id": alices["id"], "text": "bob's now"}
    refused(await b.ask(edit), "forbidden")  # an editor edits only their own
    refused(await b.ask({"op": "delete", "client_id": "b2", "id": alices["id"]}), "forbidden")
    owner = await chat_socket(server, room, api.dev.token)
    ok(await owner.ask({"op": "delete", "client_id": "o1", "id": alices["id"]}), "o1")
    audit = api.dev.http.get(f"/rooms/{room}/audit").json()["items"]
    assert next(e for e in audit if e["action"] == "message.delete")["detail"]["moderated"]

    a = await chat_socket(server, room, alice.token)
    ok(await a.ask({"op": "post", "client_id": "a2", "text": "while a commenter"}), "a2")
    patched = api.dev.http.patch(f"/rooms/{room}/members/{alice.user_id}", json={"role": "viewer"})
    assert patched.status_code == 200, patched.text
    refused(await a.ask({"op": "post", "client_id": "a3", "text": "now a viewer"}), "forbidden")
    assert api.dev.http.delete(f"/rooms/{room}/members/{bob.user_id}").status_code == 204
    with contextlib.suppress(ConnectionClosed):  # closing or closed: either way nothing lands
        await b.send_request({"op": "post", "client_id": "b3", "text": "after removal"})
    await b.wait_for(lambda: b.closed.is_set())
    assert b.close_code == 4403
    items = api.dev.http.get(f"/rooms/{room}/messages").json()["items"]
    assert [m["text"] for m in items] == ["", "while a commenter"]
    await wait_doc(v.doc, lambda m: len(m) == 2)  # refused: the viewer's socket still syncs
    assert v.close_code is None and a.close_code is None and owner.close_code is None
    for peer in (v, a, owner):
        await peer.close()
    api.close()


async def test_replies_go_only_to_the_requester_and_a_request_opts_in(
    server: CollabServer,
) -> None:
    api = Api(server)
    alice = api.user("alice")
    room = api.room("r", owner=api.dev, **{alice.user_id: "commenter"})
    async with JsPeer(server.ws_base, f"{room}/chat", {"token": alice.token}) as plain:
        await plain.wait_event("synced")
        quiet = await chat_socket(server, room, alice.token, query="")  # no ?collab=1
        asker = await chat_socket(server, room, api.dev.token)
        ok(await asker.ask({"op": "post", "client_id": "d1", "text": "hi"}), "d1")
        await wait_doc(quiet.doc, lambda m: len(m) == 1)
        messages = (await plain.call({"op": "map", "name": "messages", "size": 1}))["value"]
        assert [m["text"] for m in messages.values()] == ["hi"]
        assert quiet.other_frames == []  # not opted in: nothing but Yjs
        # A request is a hello: a client that sends one reads replies (as with "saved").
        ok(await quiet.ask({"op": "post", "client_id": "q1", "text": "me too"}), "q1")
        await plain.call({"op": "map", "name": "messages", "size": 2})
        assert (await plain.call({"op": "chat_replies"}))["replies"] == []
        assert b"Unable to compute message" not in plain.stderr
        for peer in (quiet, asker):
            await peer.close()
    api.close()


async def test_a_y_websocket_app_posts_with_101_and_reads_102(server: CollabServer) -> None:
    api = Api(server)
    room = api.room("r")
    params = {"token": server.dev_token, "collab": "1"}
    async with JsPeer(server.ws_base, f"{room}/chat", params) as js:
        await js.wait_event("synced")
        request = {"op": "post", "client_id": "js-1", "text": "from y-websocket"}
        await js.call({"op": "chat_request", "request": request})
        [reply] = (await js.call({"op": "chat_replies", "count": 1}))["replies"]
        ok(reply, "js-1")
        messages = (await js.call({"op": "map", "name": "messages", "size": 1}))["value"]
        assert messages[reply["id"]]["seq"] == reply["seq"]
        assert messages[reply["id"]]["text"] == "from y-websocket"
        bad = {"op": "edit", "client_id": "js-2", "id": "nope", "text": "x"}
        await js.call({"op": "chat_request", "request": bad})
        replies = (await js.call({"op": "chat_replies", "count": 2}))["replies"]
        refused(replies[1], "not_found")
        assert b"Unable to compute message" not in js.stderr
    api.close()


async def test_other_docs_answer_requests_bad_request(server: CollabServer) -> None:
    notes = await RawPeer.connect(server.ws_url("r", "notes", "collab=1"))
    refused(await notes.ask({"op": "post", "client_id": "n1", "text": "hi"}), "bad_request")
    await notes.insert(0, "still an editor's socket")
    await notes.request_saved(1)
    await notes.wait_for(lambda: notes.saved == 1)
    assert notes.close_code is None
    await notes.close()
    api = Api(server)
    assert api.dev.http.get("/rooms/r/messages").json()["items"] == []
    api.close()


async def test_a_revoked_credential_closes_the_socket_and_its_requests_do_nothing(
    server: CollabServer,
) -> None:
    api = Api(server)
    alice = api.user("alice")
    room = api.room("r", owner=api.dev, **{alice.user_id: "commenter"})
    a = await chat_socket(server, room, alice.token)
    ok(await a.ask({"op": "post", "client_id": "a1", "text": "before"}), "a1")
    [token] = alice.http.get("/tokens").json()["items"]  # the token this socket presents
    assert alice.http.delete(f"/tokens/{token['id']}").status_code == 204
    with contextlib.suppress(ConnectionClosed):  # closing or closed: either way nothing lands
        await a.send_request({"op": "post", "client_id": "a2", "text": "after"})
    await a.wait_for(lambda: a.closed.is_set())
    assert a.close_code == 4401 and a.replies("a2") == []
    items = api.dev.http.get(f"/rooms/{room}/messages").json()["items"]
    assert [m["text"] for m in items] == ["before"]
    api.close()


async def test_archived_messages_take_edits_and_reactions_through_both_doors(
    server_factory: ServerFactory,
) -> None:
    """A message past the live window lives in the table only: an edit or a reaction, through
    the API or a 101 request, changes its row (the history shows it) and never brings it back
    into the ``chat`` doc."""
    server = server_factory(chat_live_messages=2)
    api = Api(server)
    alice = api.user("alice")
    room = api.room("r", owner=api.dev, **{alice.user_id: "commenter"})
    ids = [post(alice.http, room, f"m{n}", f"c{n}")["id"] for n in range(1, 5)]
    a = await chat_socket(server, room, alice.token)
    await wait_doc(a.doc, lambda m: sorted(m) == sorted(ids[2:]))
    path = f"/rooms/{room}/messages/{ids[0]}"
    edited = alice.http.patch(path, json={"text": "m1 edited"})
    assert edited.status_code == 200 and edited.json()["text"] == "m1 edited"
    assert alice.http.put(f"{path}/reactions/👍").json()["reactions"] == {"👍": [alice.user_id]}
    edit = {"op": "edit", "client_id": "e2", "id": ids[1], "text": "m2 edited"}
    assert ok(await a.ask(edit), "e2") == {"client_id": "e2", "id": ids[1], "seq": 2}
    react = {"op": "react", "client_id": "r2", "id": ids[1], "emoji": "🎉"}
    assert ok(await a.ask(react), "r2")["seq"] == 2
    history = alice.http.get(f"/rooms/{room}/messages").json()["items"]
    assert [(m["text"], m["reactions"]) for m in history[:2]] == [
        ("m1 edited", {"👍": [alice.user_id]}),
        ("m2 edited", {"🎉": [alice.user_id]}),
    ]
    # The replies came after any update of the doc: it still shows the live window alone.
    assert sorted(doc_messages(a.doc)) == sorted(ids[2:])
    assert a.doc.get("info", type=Map).to_py() == {"last_seq": 4, "archived_through": 2}
    assert a.close_code is None
    await a.close()
    api.close()
