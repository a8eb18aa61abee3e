"""Access changes reach open sockets at once (identity issue, Done means 4), and a socket
lives no longer than the credential behind it (issue 8, item 2)."""

from __future__ import annotations

import anyio
import httpx
import pytest
from websockets.asyncio.client import connect

from collab.meta import MetaStore, Role
from tests.support.jspeer import JsPeer
from tests.support.rawpeer import RawPeer, close_code_of
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


# -- a socket lives no longer than the credential behind it (issue 8, item 2) ---------------


def own_origin(server: CollabServer) -> str:
    return f"http://127.0.0.1:{server.port}"


async def closed_with(peer: RawPeer, within: float) -> int | None:
    """The close code the server ends ``peer`` with, waiting at most ``within`` seconds."""
    with anyio.fail_after(within):
        await peer.closed.wait()
    return peer.close_code


async def test_a_room_token_socket_closes_4001_when_the_token_expires(
    server: CollabServer,
) -> None:
    # The repro: a token with a 2 s lifetime still wrote (and got "saved") after 4 s.
    token = server.mint_token("tina", "expiring", "editor", ttl=2)
    with anyio.fail_after(30):
        peer = await RawPeer.connect(server.ws_url("expiring", "d", token=token))
        await peer.insert(0, "written in time")
        await peer.request_saved(1)
        await peer.wait_for(lambda: peer.saved == 1)
        # 4001: outside 4400-4499, so y-websocket reconnects (with its current params).
        assert await closed_with(peer, within=5) == 4001
        # The same token is refused from then on; what it wrote in time stays.
        assert await close_code_of(server.ws_url("expiring", "d", token=token)) == 4401
        reader = await RawPeer.connect(server.ws_url("expiring", "d"))
        assert str(reader.text) == "written in time"
        await reader.close()


@pytest.mark.node
async def test_a_client_that_renews_its_token_in_params_reconnects_and_loses_no_edit(
    server: CollabServer,
) -> None:
    api = httpx.AsyncClient(
        base_url=server.http_url + "/api/v1",
        headers={"Authorization": f"Bearer {server.dev_token}"},
    )
    count = 120
    with anyio.fail_after(60):
        owner = await RawPeer.connect(server.ws_url("renew", "d"))  # creates the room
        short = (await api.post("/rooms/renew/tokens", json={"ttl": 3})).json()
        params = {"token": server.remember(short["token"])}
        async with JsPeer(server.ws_base, "renew/d", params) as peer:
            await peer.wait_event("synced")
            # What an app does before expiry: put a fresh token where the next connect reads it.
            fresh = (await api.post("/rooms/renew/tokens", json={"ttl": 3600})).json()
            await peer.call(
                {"op": "set_params", "params": {"token": server.remember(fresh["token"])}}
            )
            # Type steadily across the expiry (about 5 s of edits, one every 40 ms).
            await peer.call({"op": "burst", "tag": "e", "count": count, "every_ms": 40}, within=30)
            close = await peer.wait_event("close")
            assert close["code"] == 4001
            assert peer.count_events("closed") == 0, "y-websocket must not give up on 4001"
            await peer.call({"op": "wait_synced"})
            assert peer.count_events("synced") == 2  # reconnected (once) and synced again
            tags = [f"e.{i};" for i in range(count)]
            await owner.wait_for(lambda: all(t in str(owner.text) for t in tags), timeout=15)
            assert len(str(owner.text)) == sum(map(len, tags)), "an edit was lost or doubled"
            assert (await peer.text()) == str(owner.text)
    await owner.close()
    await api.aclose()


async def test_a_sessions_expiry_closes_its_sockets_4401(server: CollabServer) -> None:
    secret = server.session(user_id(server, "dev"), ttl=2)
    headers = {"Cookie": f"collab_session={secret}", "Origin": own_origin(server)}
    with anyio.fail_after(20):
        peer = await RawPeer.connect(
            server.ws_url("sessions", "d", token=""), additional_headers=headers
        )
        assert await closed_with(peer, within=5) == 4401
        assert (
            await close_code_of(
                server.ws_url("sessions", "d", token=""), additional_headers=headers
            )
            == 4401
        )


async def test_a_ticket_bounds_its_handshake_and_the_socket_lives_on_its_minter(
    server: CollabServer,
) -> None:
    dev = user_id(server, "dev")
    owner = await RawPeer.connect(server.ws_url("tk", "d"))  # the dev user creates the room
    own = own_origin(server)

    async def ticket(http: httpx.AsyncClient, headers: dict[str, str]) -> str:
        response = await http.post("/api/v1/rooms/tk/tickets", headers=headers, json={})
        assert response.status_code == 201, response.text
        return server.remember(str(response.json()["ticket"]))

    with anyio.fail_after(40):
        async with httpx.AsyncClient(base_url=server.http_url) as http:
            # Minted by a session: logging out closes the socket the ticket opened, and a
            # ticket minted before the logout is refused after it.
            cookie = {"Cookie": f"collab_session={server.session(dev)}", "Origin": own}
            by_session = await RawPeer.connect(
                server.ws_url("tk", "d", token=await ticket(http, cookie))
            )
            unused = await ticket(http, cookie)
            assert (await http.post("/logout", headers=cookie)).status_code == 200
            assert await closed_with(by_session, within=5) == 4401
            assert await close_code_of(server.ws_url("tk", "d", token=unused)) == 4401
            # Minted by a session about to expire: the socket ends with the session.
            short = {"Cookie": f"collab_session={server.session(dev, ttl=3)}", "Origin": own}
            expiring = await RawPeer.connect(
                server.ws_url("tk", "d", token=await ticket(http, short))
            )
            assert await closed_with(expiring, within=6) == 4401
            # Minted with a personal API token: revoking the token closes the socket.
            bearer = {"Authorization": f"Bearer {server.api_token(dev)}"}
            by_token = await RawPeer.connect(
                server.ws_url("tk", "d", token=await ticket(http, bearer))
            )
            token_id = (await http.get("/api/v1/tokens", headers=bearer)).json()["items"][0]
            revoked = await http.delete(f"/api/v1/tokens/{token_id['id']}", headers=bearer)
            assert revoked.status_code == 204
            assert await closed_with(by_token, within=5) == 4401
    assert owner.close_code is None
    await owner.close()
