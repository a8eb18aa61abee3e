"""Host validation against a real server (issue 8, item 6): DNS rebinding reaches nothing.

A page on ``attacker.example`` whose name is re-pointed at 127.0.0.1 talks to a loopback server
as a same-origin page, and its browser still sends ``Host: attacker.example``: such requests
and handshakes are refused before anything else runs; balancers' probes are not.
"""

from __future__ import annotations

from collections.abc import Callable

import anyio
import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from tests.support.server import CollabServer

pytestmark = pytest.mark.anyio


async def handshake_status(server: CollabServer, host: str) -> int:
    """The HTTP status of a WebSocket handshake sent with ``Host: host`` (101: accepted)."""
    url = f"ws://{host}/ws/rebind/d?token={server.dev_token}"
    try:
        # host=/port= go to create_connection: connect to the server, name another host.
        async with connect(url, host="127.0.0.1", port=server.port, open_timeout=10):
            return 101
    except InvalidStatus as refused:
        return refused.response.status_code


async def test_dev_mode_serves_loopback_host_names_only(server: CollabServer) -> None:
    bearer = {"Authorization": f"Bearer {server.dev_token}"}
    port = server.port
    async with httpx.AsyncClient(base_url=server.http_url, timeout=10) as http:
        for host in ("attacker.example", f"attacker.example:{port}", "10.0.0.7", "a@127.0.0.1"):
            refused = await http.get("/api/v1/me", headers={**bearer, "Host": host})
            assert refused.status_code == 400, host
            assert refused.json()["error"]["code"] == "bad_host"
            # Not even the login page: the rebinding page cannot try to guess the dev token.
            login = await http.get("/login", params={"token": "guess"}, headers={"Host": host})
            assert login.status_code == 400
        for host in ("localhost", f"localhost:{port}", "127.0.0.9", f"[::1]:{port}", "LOCALHOST."):
            served = await http.get("/api/v1/me", headers={**bearer, "Host": host})
            assert served.status_code == 200, host
        # Balancers probe by address, under any name.
        for path in ("/healthz", "/readyz"):
            assert (await http.get(path, headers={"Host": "10.0.0.1"})).status_code == 200
    with anyio.fail_after(20):
        assert await handshake_status(server, f"attacker.example:{port}") == 400
        assert await handshake_status(server, f"localhost:{port}") == 101


async def test_with_a_provider_only_the_public_host_and_allowed_hosts_are_served(
    server_factory: Callable[..., CollabServer],
) -> None:
    # An identity provider configured (never contacted here): dev mode is off.
    server = server_factory(
        oidc_issuer="https://idp.invalid",
        oidc_client_id="collab",
        oidc_client_secret="not-used-in-this-test",
        public_url="https://collab.example.com",
        allowed_hosts="alt.example, *.team.example",
    )
    async with httpx.AsyncClient(base_url=server.http_url, timeout=10) as http:

        async def status(host: str) -> int:
            return (await http.get("/auth/session", headers={"Host": host})).status_code

        for host in ("collab.example.com", "alt.example:8443", "a.team.example"):
            assert await status(host) == 401, host  # served: nobody is signed in
        for host in ("localhost", f"127.0.0.1:{server.port}", "team.example", "evil.example"):
            assert await status(host) == 400, host
        assert (await http.get("/healthz", headers={"Host": "10.0.0.1"})).status_code == 200
    with anyio.fail_after(20):
        assert await handshake_status(server, "evil.example") == 400
