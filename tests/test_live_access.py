"""Access changes reach open sockets at once (identity issue, Done means 4)."""

from __future__ import annotations

import anyio
import httpx
import pytest
from websockets.asyncio.client import connect

from collab.meta import MetaStore, Role
from tests.support.jspeer import JsPeer
from tests.support.rawpeer import RawPeer
from tests.support.server import CollabServer

pytestmark = pytest.mark.anyio


def user_id(server: CollabServer, subject: str) -> str:
    async def find(meta: MetaStore) -> str:
        return next(u.id for u in await meta.list_users() if u.subject == subject)

    return server.with_meta(find)


@pytest.mark.node
async def test_upgrade_pulls_the_edits_refused_before(server: CollabServer) -> None:
    owner = await RawPeer.connect(server.ws_url("live", "d"))  # the dev user creates the room
    await owner.insert(0, "owner text")
    # vic's token allows up to editor (its ceiling); vic's membership decides: viewer for now.
    token = server.mint_token("vic", "live", "editor")
    vic = user_id(server, "vic")
    server.with_meta(lambda meta: meta.set_member("live", vic, Role.viewer))
    api = httpx.AsyncClient(
        base_url=server.http_url + "/api/v1",
        headers={"Authorization": f"Bearer {server.dev_token}"},
    )
    with anyio.fail_after(30):
        async with JsPeer(server.ws_base, "live/d", {"token": token}) as viewer:
            await viewer.call({"op": "wait_text", "equals": "owner text"})
            await viewer.call({"op": "insert", "index": 0, "text": "[viewer] "})
            await viewer.wait_event("permission-denied")
            assert str(owner.text) == "owner text"
            response = await api.patch(f"/rooms/live/members/{vic}", json={"role": "editor"})
            assert response.status_code == 200
            # The server asks the upgraded socket for what it lacks: the refused edit arrives.
            await owner.wait_for(lambda: str(owner.text) == "[viewer] owner text")
            assert viewer.count_events("close") == 0
            # Downgrade again: later edits are refused, the socket stays.
            response = await api.patch(f"/rooms/live/members/{vic}", json={"role": "viewer"})
            assert response.status_code == 200
            await viewer.call({"op": "insert", "index": 0, "text": "late "})
            fresh = await RawPeer.connect(server.ws_url("live", "d"))
            await fresh.request_saved(1)
            await fresh.wait_for(lambda: fresh.saved == 1)
            assert str(fresh.text) == "[viewer] owner text"
            # Removal closes it with 4403, and y-websocket stops retrying.
            response = await api.delete(f"/rooms/live/members/{vic}")
            assert response.status_code == 204
            await viewer.wait_event("close", code=4403)
            await fresh.close()
    await api.aclose()
    await owner.close()


async def test_logout_closes_the_sessions_sockets_4401(server: CollabServer) -> None:
    async def session(meta: MetaStore) -> str:
        dev = next(u for u in await meta.list_users() if u.subject == "dev")
        return (await meta.create_session(dev.id, 3600))[1]

    secret = server.with_meta(session)
    own = f"http://127.0.0.1:{server.port}"
    headers = {"Cookie": f"collab_session={secret}", "Origin": own}
    with anyio.fail_after(20):
        async with connect(server.ws_url("out", "d", token=""), additional_headers=headers) as ws:
            await ws.recv()  # the server's SyncStep1: we are in
            async with httpx.AsyncClient(base_url=server.http_url) as http:
                response = await http.post("/logout", headers=headers)
                assert response.status_code in (200, 303)
            with pytest.raises(Exception):  # noqa: B017 - any ConnectionClosed variant
                while True:
                    await ws.recv()
            assert ws.close_code == 4401
