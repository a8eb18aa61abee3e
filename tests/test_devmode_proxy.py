"""Dev mode behind a reverse proxy on loopback: the token is still the only way in."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx
import pytest

from tests.support.nginx import Nginx
from tests.support.rawpeer import RawPeer, close_code_of
from tests.support.server import CollabServer

pytestmark = pytest.mark.anyio


@pytest.fixture
def proxy(server: CollabServer, tmp_path: Path) -> Iterator[Nginx]:
    nginx = Nginx(tmp_path / "nginx", server.port)
    nginx.start()
    yield nginx
    nginx.stop()


async def test_requests_through_nginx_need_the_dev_token(
    server: CollabServer, proxy: Nginx
) -> None:
    # Through the proxy every request comes from 127.0.0.1: loopback must grant nothing.
    async with httpx.AsyncClient(base_url=proxy.http_url) as http:
        assert (await http.get("/")).status_code == 401
        assert (await http.get("/login")).status_code == 401
        assert (await http.get("/api/v1/me")).status_code == 401
        assert (await http.get("/api/v1/rooms")).status_code == 401
        authorized = {"Authorization": f"Bearer {server.dev_token}"}
        assert (await http.get("/api/v1/me", headers=authorized)).status_code == 200
    with anyio.fail_after(20):
        assert await close_code_of(f"{proxy.ws_base}/r/d") == 4401
        peer = await RawPeer.connect(f"{proxy.ws_base}/r/d?token={server.dev_token}")
        await peer.insert(0, "through nginx")
        direct = await RawPeer.connect(server.ws_url("r", "d"))
        await direct.wait_for(lambda: str(direct.text) == "through nginx")
        for p in (peer, direct):
            await p.close()
