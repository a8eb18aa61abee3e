"""Files in chat messages and in documents (issue 12): a message attaches only files its room
references, carried as {id, name, size, mime} in the API and in the `chat` doc; a document may
embed any file URL, but an embed resolves only files its own room references (Done means 7),
and the collector never reads documents."""

from __future__ import annotations

import sys
from typing import Any

import anyio
import httpx
import pytest
from pycrdt import Map, Text

from tests.api.conftest import Api, assert_error
from tests.support.pyclient import provider
from tests.support.server import CollabServer
from tests.support.waiting import wait_until

pytestmark = pytest.mark.anyio


def upload(client: httpx.Client, room: str, data: bytes, name: str) -> dict[str, Any]:
    r = client.post(f"/rooms/{room}/files", files={"file": (name, data)})
    assert r.status_code == 201, r.text
    found: dict[str, Any] = r.json()
    return found


def stored_docs(client: httpx.Client, room: str) -> list[str]:
    return [d["name"] for d in client.get(f"/rooms/{room}/docs").json()["items"]]


def post(client: httpx.Client, room: str, cid: str, **body: Any) -> httpx.Response:
    return client.post(f"/rooms/{room}/messages", json={"client_id": cid, **body})


async def test_a_message_carries_its_room_s_files(server: CollabServer) -> None:
    api = Api(server)
    try:
        alice = api.user("alice")
        room = api.room("r", owner=api.dev, **{alice.user_id: "commenter"})
        api.room("other")
        photo = upload(alice.http, room, b"GIF89a" + b"\x00" * 50, "cat.gif")
        notes = upload(alice.http, room, b"some notes\n", "notes.txt")
        foreign = upload(api.dev.http, "other", b"not yours", "theirs.txt")
        attached = [photo["id"], notes["id"], photo["id"]]  # a repeat is attached once
        r = post(alice.http, room, "a1", text="look", attachments=attached)
        assert r.status_code == 201, r.text
        expected = [
            {"id": photo["id"], "name": "cat.gif", "size": 56, "mime": "image/gif"},
            {"id": notes["id"], "name": "notes.txt", "size": 11, "mime": "text/plain"},
        ]
        assert r.json()["attachments"] == expected
        got = alice.http.get(f"/rooms/{room}/messages/{r.json()['id']}").json()
        assert got["attachments"] == expected
        only = post(alice.http, room, "a2", text="", attachments=[notes["id"]])
        assert only.status_code == 201  # a file alone needs no text
        async with provider(server.ws_url(room, "chat", token=alice.token)) as (doc, _):
            with anyio.fail_after(10):
                while len(doc.get("messages", type=Map)) < 2:
                    await anyio.sleep(0.02)
            held = doc.get("messages", type=Map)[r.json()["id"]]
            assert isinstance(held, dict) and held["attachments"] == expected

        # Another room's file is refused exactly like one that does not exist.
        there = post(alice.http, room, "b1", text="x", attachments=[foreign["id"]])
        nowhere = post(alice.http, room, "b1", text="x", attachments=["0" * 32])
        assert_error(there, 400, "bad_request")
        assert there.json()["error"]["message"].startswith("no such file in this room")
        assert nowhere.status_code == 400 and "0" * 32 in nowhere.json()["error"]["message"]
        for bad in ("one", [1], [{"id": notes["id"]}], [notes["id"]] * 11 + ["x"], ["x" * 300]):
            assert_error(post(alice.http, room, "b2", text="x", attachments=bad), 400)
        assert_error(post(alice.http, room, "b3", text=" ", attachments=[]), 400)
        assert len(alice.http.get(f"/rooms/{room}/messages").json()["items"]) == 2
    finally:
        api.close()


async def test_an_embed_resolves_only_files_of_its_own_room(server: CollabServer) -> None:
    """Done means 7: an editor of room A pastes room B's file URL into a doc of A. Neither
    through A (not referenced there) nor through B (not a member) can anyone of A download it,
    and the collector, which never reads documents, removes the bytes once B lets go."""
    api = Api(server)
    try:
        eve, bob = api.user("eve"), api.user("bob")
        room_a = api.room("a", owner=api.dev, **{eve.user_id: "editor", bob.user_id: "viewer"})
        room_b = api.room("b")
        secret = upload(api.dev.http, room_b, b"room b's secret plans", "plans.txt")
        urls = [f"/api/v1/rooms/{r}/files/{secret['id']}" for r in (room_a, room_b)]
        with anyio.fail_after(20):
            async with provider(server.ws_url(room_a, "notes", token=eve.token)) as (doc, _):
                text = doc.get("body", type=Text)
                text += "see " + " and ".join(urls)
                await wait_until(lambda: stored_docs(eve.http, room_a) == ["notes"])
            async with provider(server.ws_url(room_a, "notes", token=bob.token)) as (seen, _):
                await wait_until(lambda: urls[0] in str(seen.get("body", type=Text)))
        for who in (eve, bob):
            for url in urls:
                r = who.http.get(url.removeprefix("/api/v1"))
                assert_error(r, 404, "not_found")
                assert_error(who.http.get(url.removeprefix("/api/v1") + "/preview"), 404)
        # Nor can the editor attach it to a message of A.
        assert_error(post(eve.http, room_a, "e1", text="x", attachments=[secret["id"]]), 400)
        assert api.dev.http.get(urls[1].removeprefix("/api/v1")).content == b"room b's secret plans"

        assert api.dev.http.delete(f"/rooms/{room_b}/files/{secret['id']}").status_code == 204
        store = f"sqlite:///{server.workdir / 'collab.db'}"
        command = [sys.executable, "-m", "collab", "files", "gc", "--store", store, "--grace", "0"]
        with anyio.fail_after(60):
            gc = await anyio.run_process(command, check=False)
        assert gc.returncode == 0, gc.stderr.decode()
        assert "removed 1 unreferenced files" in gc.stdout.decode()
        blob = server.workdir / "files" / secret["sha256"][:2] / secret["sha256"][2:]
        assert not blob.exists()
    finally:
        api.close()
