"""Docs routes: list, delete (open sockets 4404, generation renewed)."""

from __future__ import annotations

import anyio
import pytest

from tests.api.conftest import Api, assert_error
from tests.support.race import STORES, race, racing_servers
from tests.support.rawpeer import RawPeer

pytestmark = pytest.mark.anyio


async def _write(api: Api, token: str, room: str, doc: str, text: str) -> RawPeer:
    peer = await RawPeer.connect(api.server.ws_url(room, doc, token=token))
    await peer.insert(0, text)
    await peer.request_saved(1)
    await peer.wait_for(lambda: peer.saved == 1)
    return peer


async def test_list_and_delete(api: Api) -> None:
    alice, bob = api.user("alice"), api.user("bob")
    api.room("r", owner=alice, **{bob.user_id: "editor"})
    with anyio.fail_after(15):
        for name in ("b", "a", "c"):
            await (await _write(api, alice.token, "r", name, name * 3)).close()
        docs = alice.http.get("/rooms/r/docs").json()
        assert [d["name"] for d in docs["items"]] == ["a", "b", "c"]
        first = docs["items"][0]
        assert first["size"] > 0 and first["updated_seq"] >= 1 and first["generation"]
        page = alice.http.get("/rooms/r/docs", params={"limit": 2}).json()
        rest = alice.http.get("/rooms/r/docs", params={"cursor": page["next_cursor"]}).json()
        assert [d["name"] for d in page["items"] + rest["items"]] == ["a", "b", "c"]

        open_peer = await RawPeer.connect(api.server.ws_url("r", "a", token=bob.token))
        assert str(open_peer.text) == "aaa"
        assert_error(bob.http.delete("/rooms/r/docs/a"), 403, "forbidden")
        assert alice.http.delete("/rooms/r/docs/a").status_code == 204
        await open_peer.closed.wait()
        assert open_peer.close_code == 4404
        assert [d["name"] for d in alice.http.get("/rooms/r/docs").json()["items"]] == ["b", "c"]
        # The next joiner starts fresh, and re-creating the doc gives it a new generation.
        fresh = await _write(api, alice.token, "r", "a", "new")
        assert str(fresh.text) == "new"
        await fresh.close()
        again = alice.http.get("/rooms/r/docs").json()["items"][0]
        assert again["name"] == "a" and again["generation"] != first["generation"]
    assert_error(alice.http.delete("/rooms/r/docs/missing"), 404, "not_found")
    assert_error(alice.http.delete("/rooms/r/docs/chat"), 400, "bad_request")
    assert_error(alice.http.delete("/rooms/r/docs/bad!name"), 400, "bad_name")
    assert_error(api.user("carol").http.get("/rooms/r/docs"), 404, "not_found")  # no member
    events = alice.http.get("/rooms/r/audit").json()["items"]
    assert any(e["action"] == "doc.delete" and e["target"] == "a" for e in events)


async def test_deleting_a_room_deletes_its_docs(api: Api) -> None:
    alice = api.user("alice")
    api.room("gone", owner=alice)
    with anyio.fail_after(10):
        peer = await _write(api, alice.token, "gone", "d", "secret")
        assert alice.http.delete("/rooms/gone").status_code == 204
        await peer.closed.wait()
        assert peer.close_code == 4404
    api.room("gone", owner=alice)
    assert alice.http.get("/rooms/gone/docs").json()["items"] == []
    with anyio.fail_after(10):
        reader = await RawPeer.connect(api.server.ws_url("gone", "d", token=alice.token))
        assert str(reader.text) == ""
        await reader.close()


@pytest.mark.parametrize("store", STORES)
async def test_concurrent_new_docs_stay_within_the_doc_cap(
    request: pytest.FixtureRequest, store: str
) -> None:
    """16 docs described at once (how the workspace creates one) for a cap of 2: counted, then
    written, more got in; the count (stored docs and described ones) and the insert are one
    step now, on every store (PostgreSQL: two nodes)."""
    servers = racing_servers(request, store, max_docs_per_room=2)
    token = servers[0].dev_token
    (made,) = await race(servers, token, "POST", [("/rooms", {"id": "r"})])
    assert made.status_code == 201, made.text
    calls = [(f"/rooms/r/docs/d{i}", {"title": f"Doc {i}"}) for i in range(16)]
    answers = await race(servers, token, "PATCH", calls)
    for refused in (r for r in answers if r.status_code != 201):
        assert_error(refused, 403, "limit_reached")
    assert [r.status_code for r in answers].count(201) == 2
    (listed,) = await race(servers[-1:], token, "GET", [("/rooms/r/docs", None)])
    assert len(listed.json()["items"]) == 2
