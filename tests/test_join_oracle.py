"""A socket's refusal tells nobody outside a room whether the room exists: a non-member, an
anonymous caller and a token for another room get the same close code and reason for an
existing room (and its docs) as for a missing one, as the HTTP API answers a non-member 404
for both. Members keep their documented codes (4404 for a doc they may not create: members
may list the docs anyway)."""

from __future__ import annotations

import anyio
import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from collab.meta import MetaStore, Role
from tests.support.rawpeer import RawPeer
from tests.support.server import CollabServer, ServerFactory

pytestmark = pytest.mark.anyio


async def refusal(url: str) -> tuple[int | None, str | None]:
    """The close code and reason the server refuses a join with."""
    async with connect(url, open_timeout=10) as ws:
        with anyio.fail_after(10):
            try:
                while True:
                    await ws.recv()
            except ConnectionClosed:
                pass
        return ws.close_code, ws.close_reason


def member_token(server: CollabServer, name: str, room: str, role: Role) -> str:
    """A personal API token of a user who is ``role`` in ``room`` (the room made if missing)."""
    server.mint_token(name, room)

    async def make(meta: MetaStore) -> str:
        user = next(u for u in await meta.list_users() if u.subject == name)
        await meta.set_member(room, user.id, role)
        return (await meta.create_api_token(user.id, "t"))[1]

    return server.remember(server.with_meta(make))


def outsider_token(server: CollabServer, name: str) -> str:
    user_id = server.create_user(name)
    return server.api_token(user_id)


@pytest.mark.parametrize("auto_create", [False, True])
async def test_outsiders_cannot_tell_a_room_or_doc_from_a_missing_one(
    server_factory: ServerFactory, auto_create: bool
) -> None:
    server = server_factory(auto_create_rooms=auto_create)
    owner = member_token(server, "olga", "secret", Role.owner)
    eve = outsider_token(server, "eve")
    elsewhere = server.mint_token("mallory", "hers")  # a room token for another room
    with anyio.fail_after(60):
        seed = await RawPeer.connect(server.ws_url("secret", "plans", token=owner))
        await seed.insert(0, "launch on friday")
        await seed.request_saved(1)
        await seed.wait_for(lambda: seed.saved == 1)
        existing = [("secret", "plans"), ("secret", "nothing-here"), ("secret", "chat")]
        missing = [("nowhere", "plans")] if not auto_create else []
        for who, expected in ((eve, 4404), ("", 4401), (elsewhere, 4403)):
            answers = {
                await refusal(server.ws_url(room, doc, token=who))
                for room, doc in existing + missing
            }
            assert len(answers) == 1, (who[:4], answers)  # one answer, whatever exists
            assert answers.pop()[0] == expected
        if auto_create:
            # A signed-in user's join of a missing room creates it (theirs): no refusal to
            # compare, and the existing room's answer is the non-member's 4404 above.
            fresh = await RawPeer.connect(server.ws_url("nowhere", "plans", token=eve))
            await fresh.close()
        await seed.close()
    # The HTTP API answers the same for both, as before.
    auth = {"authorization": f"Bearer {eve}"}
    async with httpx.AsyncClient(base_url=server.http_url + "/api/v1", headers=auth) as http:
        seen = {(await http.get(f"/rooms/{r}/docs")).status_code for r in ("secret", "gone")}
    assert seen == {404}


async def test_members_keep_their_codes(server_factory: ServerFactory) -> None:
    server = server_factory(auto_create_rooms=False, max_docs_per_room=1)
    viewer = member_token(server, "vera", "team", Role.viewer)
    editor = member_token(server, "ed", "team", Role.editor)
    with anyio.fail_after(60):
        first = await RawPeer.connect(server.ws_url("team", "one", token=editor))
        await first.insert(0, "x")
        await first.request_saved(1)
        await first.wait_for(lambda: first.saved == 1)
        # A member learns a doc is missing (4404: the doc list is theirs to read anyway) ...
        assert (await refusal(server.ws_url("team", "two", token=viewer)))[0] == 4404
        # ... an existing one opens read-only ...
        reader = await RawPeer.connect(server.ws_url("team", "one", token=viewer))
        assert str(reader.text) == "x"
        # ... and a cap refuses a new doc with 4403, as documented.
        assert (await refusal(server.ws_url("team", "two", token=editor)))[0] == 4403
        await reader.close()
        await first.close()
