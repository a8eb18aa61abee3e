"""``PATCH /rooms/{room}/docs/{doc}``: a doc's title and kind, attack-tested.

Editors and owners create and rename; viewers and commenters get 403, non-members the same 404
as a missing room; a kind is set once (409); bodies are checked precisely; a flood gets 429;
the list shows new docs with their metadata, and deleting a doc deletes its metadata.
"""

from __future__ import annotations

import anyio
import pytest

from tests.api.conftest import Api, assert_error
from tests.support.rawpeer import RawPeer
from tests.support.server import ServerFactory


def test_editors_create_and_rename_owners_delete(api: Api) -> None:
    alice, bob = api.user("alice"), api.user("bob")
    room = api.room("r", owner=alice, **{bob.user_id: "editor"})
    created = bob.http.patch(f"/rooms/{room}/docs/notes", json={"title": "Notes", "kind": "rich"})
    assert created.status_code == 201, created.text
    body = created.json()
    assert (body["name"], body["title"], body["kind"], body["generation"]) == (
        "notes",
        "Notes",
        "rich",
        None,
    )
    renamed = alice.http.patch(f"/rooms/{room}/docs/notes", json={"title": "  Minutes "})
    assert renamed.status_code == 200 and renamed.json()["title"] == "Minutes"
    assert renamed.json()["kind"] == "rich"
    same_kind = bob.http.patch(f"/rooms/{room}/docs/notes", json={"kind": "rich"})
    assert same_kind.status_code == 200
    assert_error(bob.http.patch(f"/rooms/{room}/docs/notes", json={"kind": "text"}), 409)
    listed = alice.http.get(f"/rooms/{room}/docs").json()["items"]
    assert [(d["name"], d["title"], d["kind"]) for d in listed] == [("notes", "Minutes", "rich")]
    assert_error(bob.http.delete(f"/rooms/{room}/docs/notes"), 403, "forbidden")
    assert alice.http.delete(f"/rooms/{room}/docs/notes").status_code == 204
    assert alice.http.get(f"/rooms/{room}/docs").json()["items"] == []
    events = [e["action"] for e in alice.http.get(f"/rooms/{room}/audit").json()["items"]]
    assert {"doc.create", "doc.update", "doc.delete"} <= set(events)


@pytest.mark.anyio
async def test_a_stored_doc_gets_a_title_and_keeps_its_content(api: Api) -> None:
    room = api.room("r")
    with anyio.fail_after(15):
        peer = await RawPeer.connect(api.server.ws_url(room, "plain"))
        await peer.insert(0, "hello")
        await peer.request_saved(1)
        await peer.wait_for(lambda: peer.saved == 1)
        await peer.close()
    answer = api.dev.http.patch(f"/rooms/{room}/docs/plain", json={"title": "Plain"})
    assert answer.status_code == 201  # its first metadata
    doc = answer.json()
    assert doc["kind"] == "text" and doc["generation"] and doc["size"] > 0


def test_roles_non_members_and_credentials(api: Api) -> None:
    viewer, commenter, stranger = api.user("v"), api.user("c"), api.user("s")
    room = api.room("r", api.dev, **{viewer.user_id: "viewer", commenter.user_id: "commenter"})
    body = {"title": "T"}
    assert_error(viewer.http.patch(f"/rooms/{room}/docs/d", json=body), 403, "forbidden")
    assert_error(commenter.http.patch(f"/rooms/{room}/docs/d", json=body), 403, "forbidden")
    assert_error(stranger.http.patch(f"/rooms/{room}/docs/d", json=body), 404, "not_found")
    assert_error(stranger.http.patch("/rooms/missing/docs/d", json=body), 404, "not_found")
    assert_error(api.anonymous().patch(f"/rooms/{room}/docs/d", json=body), 401)
    assert_error(api.bearer("forged-token-value").patch(f"/rooms/{room}/docs/d", json=body), 401)
    # A revoked personal token is refused at once.
    editor = api.user("e")
    api.dev.http.post(f"/rooms/{room}/members", json={"user_id": editor.user_id, "role": "editor"})
    token_id = editor.http.get("/tokens").json()["items"][0]["id"]
    assert editor.http.delete(f"/tokens/{token_id}").status_code == 204
    assert_error(editor.http.patch(f"/rooms/{room}/docs/d", json=body), 401)
    # A room token bound to other docs may not name this one; an expired one is refused.
    scoped = api.server.mint_token("scoped", room, "editor")
    narrow = api.server.remember(
        api.dev.http.post(
            f"/rooms/{room}/tokens", json={"role": "editor", "docs": "only-*"}
        ).json()["token"]
    )
    assert api.bearer(scoped).patch(f"/rooms/{room}/docs/d", json=body).status_code == 201
    assert_error(api.bearer(narrow).patch(f"/rooms/{room}/docs/d", json=body), 404)
    expired = api.server.mint_token("late", room, "editor", ttl=-10)
    assert_error(api.bearer(expired).patch(f"/rooms/{room}/docs/d", json=body), 401)
    # Cookie sessions need this site's Origin for a change.
    cookie = api.cookie_client(api.dev.user_id, origin="https://evil.example")
    assert cookie.patch(f"/rooms/{room}/docs/d", json=body).status_code == 403


def test_bad_bodies_and_names(api: Api) -> None:
    room = api.room("r")
    dev = api.dev.http
    url = f"/rooms/{room}/docs/d"
    assert_error(dev.patch(url, content=b"{nope"), 400, "bad_request")
    assert_error(dev.patch(url, json=["title"]), 400, "bad_request")
    assert_error(dev.patch(url, json={}), 400, "bad_request")
    assert_error(dev.patch(url, json={"title": ""}), 400, "bad_request")
    assert_error(dev.patch(url, json={"title": "  "}), 400, "bad_request")
    assert_error(dev.patch(url, json={"title": "a\x00b"}), 400, "bad_request")
    assert_error(dev.patch(url, json={"title": "x" * 201}), 400, "bad_request")
    assert_error(dev.patch(url, json={"title": 5}), 400, "bad_request")
    assert_error(dev.patch(url, json={"kind": "spreadsheet"}), 400, "bad_request")
    assert_error(dev.patch(url, content=b'{"title": "' + b"x" * 100_000 + b'"}'), 413)
    assert_error(dev.patch(f"/rooms/{room}/docs/chat", json={"title": "x"}), 400)
    assert_error(dev.patch(f"/rooms/{room}/docs/_private", json={"title": "x"}), 400)
    assert_error(dev.patch(f"/rooms/{room}/docs/bad!name", json={"title": "x"}), 400, "bad_name")
    assert dev.get(f"/rooms/{room}/docs").json()["items"] == []


def test_a_flood_gets_429_and_the_doc_cap_holds(server_factory: ServerFactory) -> None:
    server = server_factory(api_create_rate=1, api_create_burst=4, max_docs_per_room=3)
    api = Api(server)
    try:
        room = api.room("r")
        codes = [
            api.dev.http.patch(f"/rooms/{room}/docs/d{n}", json={"title": "t"}).status_code
            for n in range(4)
        ]
        assert codes == [201, 201, 201, 403], codes  # the fourth doc is past the cap
        limited = api.dev.http.patch(f"/rooms/{room}/docs/d0", json={"title": "again"})
        assert_error(limited, 429, "rate_limited")
        assert int(limited.headers["retry-after"]) >= 1
    finally:
        api.close()
