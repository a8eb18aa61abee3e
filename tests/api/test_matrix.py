"""Role x action, every cell, against a real server: sockets for docs, HTTP for the rest.

Roles: owner (created the room), editor, commenter, viewer (added by the owner), and a
non-member. Each cell runs in its own room on one shared server.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from tests.api.conftest import Actor, Api
from tests.support.rawpeer import RawPeer
from tests.support.server import CollabServer

pytestmark = pytest.mark.anyio

ROLES = ["owner", "editor", "commenter", "viewer", "nonmember"]
WRITERS = {"owner", "editor"}
MEMBERS = {"owner", "editor", "commenter", "viewer"}


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CollabServer]:
    server = CollabServer(Path(tmp_path_factory.mktemp("matrix")))
    server.start()
    yield server
    server.stop()
    leaked = [secret[:8] + "..." for secret in server.leaked_secrets()]
    assert not leaked, f"credentials in the server log: {leaked}"


@pytest.fixture
def api(shared_server: CollabServer) -> Iterator[Api]:
    helper = Api(shared_server)
    yield helper
    helper.close()


class Cell:
    """One room with the owner's text in doc ``d``, and the actor playing ``role``."""

    def __init__(self, api: Api, role: str, name: str) -> None:
        self.api = api
        self.server = api.server
        self.owner = api.user(f"owner-{name}")
        self.room = f"{name}-{role}"
        if role == "owner":
            self.actor = self.owner
            api.room(self.room, owner=self.owner)
        else:
            self.actor = api.user(f"{role}-{name}")
            members = {} if role == "nonmember" else {self.actor.user_id: role}
            api.room(self.room, owner=self.owner, **members)

    def url(self, who: Actor, doc: str = "d") -> str:
        return self.server.ws_url(self.room, doc, "collab=1", token=who.token)

    async def seed(self) -> RawPeer:
        peer = await RawPeer.connect(self.url(self.owner))
        await peer.insert(0, "hello")
        await peer.request_saved(1)
        await peer.wait_for(lambda: peer.saved >= 1)
        return peer

    async def fresh_text(self) -> str:
        reader = await RawPeer.connect(self.url(self.owner))
        try:
            return str(reader.text)
        finally:
            await reader.close()


@pytest.mark.parametrize("role", ROLES)
async def test_read_doc(api: Api, role: str) -> None:
    cell = Cell(api, role, "read")
    seeder = await cell.seed()
    with anyio.fail_after(10):
        if role in MEMBERS:
            peer = await RawPeer.connect(cell.url(cell.actor))
            assert str(peer.text) == "hello"
            assert peer.close_code is None
            await peer.close()
        else:
            peer = await RawPeer.connect(cell.url(cell.actor), sync=False)
            await peer.closed.wait()
            assert peer.close_code == 4404  # as for a missing room: existence is not told
            assert str(peer.text) == ""
    await seeder.close()


@pytest.mark.parametrize("role", ROLES)
async def test_write_doc(api: Api, role: str) -> None:
    cell = Cell(api, role, "write")
    seeder = await cell.seed()
    with anyio.fail_after(10):
        if role not in MEMBERS:
            peer = await RawPeer.connect(cell.url(cell.actor), sync=False)
            await peer.closed.wait()
            assert peer.close_code == 4404  # as for a missing room
        else:
            peer = await RawPeer.connect(cell.url(cell.actor))
            await peer.insert(5, " world")
            if role in WRITERS:
                await seeder.wait_for(lambda: str(seeder.text) == "hello world")
            else:
                # Refused once with a permission-denied frame (sent before the saved echo
                # that follows it); the socket stays open.
                await peer.request_saved(7)
                await peer.wait_for(lambda: peer.saved == 7)
                assert [f[0] for f in peer.other_frames] == [2]
                assert peer.close_code is None and not peer.closed.is_set()
            expected = "hello world" if role in WRITERS else "hello"
            assert await cell.fresh_text() == expected
            assert str(seeder.text) == expected
            await peer.close()
    await seeder.close()


@pytest.mark.parametrize("role", ROLES)
async def test_manage_members(api: Api, role: str) -> None:
    cell = Cell(api, role, "manage")
    newcomer = api.user(f"newcomer-{role}")
    http = cell.actor.http
    added = http.post(
        f"/rooms/{cell.room}/members", json={"user_id": newcomer.user_id, "role": "viewer"}
    )
    changed = http.patch(
        f"/rooms/{cell.room}/members/{cell.owner.user_id}", json={"role": "viewer"}
    )
    if role == "owner":
        assert added.status_code == 201 and added.json()["role"] == "viewer"
        assert changed.status_code == 409  # the last owner stays an owner
        r = http.patch(f"/rooms/{cell.room}/members/{newcomer.user_id}", json={"role": "editor"})
        assert r.status_code == 200 and r.json()["role"] == "editor"
        assert http.delete(f"/rooms/{cell.room}/members/{newcomer.user_id}").status_code == 204
    else:
        # A non-member gets what a missing room gets (404); a member of a lower role 403.
        status, code = (404, "not_found") if role == "nonmember" else (403, "forbidden")
        for response in (added, changed):
            assert response.status_code == status, response.text
            assert response.json()["error"]["code"] == code
    members = {
        m["user_id"]: m["role"]
        for m in cell.owner.http.get(f"/rooms/{cell.room}/members").json()["items"]
    }
    assert members[cell.owner.user_id] == "owner"
    assert newcomer.user_id not in members


@pytest.mark.parametrize("role", ROLES)
async def test_mint_token(api: Api, role: str) -> None:
    cell = Cell(api, role, "mint")
    seeder = await cell.seed()
    r = cell.actor.http.post(f"/rooms/{cell.room}/tokens", json={"ttl": 60})
    if role not in MEMBERS:
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
        await seeder.close()
        return
    assert r.status_code == 201, r.text
    body = r.json()
    assert (
        body["role"] == role and body["room"] == cell.room and body["user_id"] == cell.actor.user_id
    )
    above = {"owner": None, "editor": "owner", "commenter": "editor", "viewer": "commenter"}[role]
    if above is not None:
        refused = cell.actor.http.post(f"/rooms/{cell.room}/tokens", json={"role": above})
        assert refused.status_code == 403
    # The minted token opens the doc with exactly that role.
    with anyio.fail_after(10):
        url = cell.server.ws_url(cell.room, "d", token=body["token"])
        peer = await RawPeer.connect(url)
        assert str(peer.text) == "hello"
        await peer.insert(0, ">")
        if role in WRITERS:
            await seeder.wait_for(lambda: str(seeder.text) == ">hello")
        else:
            await peer.request_saved(1)  # echoed after the denial
            await peer.wait_for(lambda: peer.saved == 1)
            assert [f[0] for f in peer.other_frames] == [2]
            assert str(seeder.text) == "hello"
        await peer.close()
    await seeder.close()


@pytest.mark.parametrize("role", ROLES)
async def test_delete_room(api: Api, role: str) -> None:
    cell = Cell(api, role, "delete")
    seeder = await cell.seed()
    r = cell.actor.http.delete(f"/rooms/{cell.room}")
    with anyio.fail_after(10):
        if role == "owner":
            assert r.status_code == 204
            await seeder.closed.wait()
            assert seeder.close_code == 4404
            assert cell.owner.http.get(f"/rooms/{cell.room}").status_code == 404
        else:
            expected = 404 if role == "nonmember" else 403
            assert r.status_code == expected, r.text
            assert cell.owner.http.get(f"/rooms/{cell.room}").status_code == 200
            assert seeder.close_code is None
            assert await cell.fresh_text() == "hello"
    await seeder.close()
