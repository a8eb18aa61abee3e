"""Behind a real nginx on loopback: TLS at nginx, collab under the sub-path /collab/.

y-websocket syncs through it, the Origin check and Secure cookies follow the public URL, and the
per-client rate limits see each client's real address (nginx passes it in X-Forwarded-For; the
clients connect from distinct loopback addresses). (Operations issue, Done means 6.)
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from tests.support.jspeer import JsPeer
from tests.support.nginx import Nginx, require_nginx
from tests.support.rawpeer import RawPeer
from tests.support.server import CollabServer, ServerFactory
from tests.support.tls import client_context, self_signed

pytestmark = pytest.mark.anyio


class Deployment:
    def __init__(self, server: CollabServer, nginx: Nginx, cert: Path) -> None:
        self.server, self.nginx, self.cert = server, nginx, cert
        self.context = client_context(cert)

    def ws_url(self, room: str, doc: str, token: str | None = None) -> str:
        token = self.server.dev_token if token is None else token
        return f"{self.nginx.ws_base}/{room}/{doc}" + (f"?token={token}" if token else "")


@pytest.fixture
def deployment(server_factory: ServerFactory, tmp_path: Path) -> Iterator[Deployment]:
    require_nginx()
    cert, key = self_signed(tmp_path)
    nginx = Nginx(
        tmp_path / "nginx", 0, prefix="/collab/", tls=(cert, key), forwarded_for="$remote_addr"
    )
    server = server_factory(
        public_url=f"https://127.0.0.1:{nginx.port}/collab",
        forwarded_allow_ips="127.0.0.1",
        handshake_rate=0.01,
        handshake_burst=3,
    )
    nginx.upstream_port = server.port
    nginx.start()
    yield Deployment(server, nginx, cert)
    nginx.stop()


@pytest.mark.node
async def test_y_websocket_syncs_through_tls_and_a_sub_path(
    deployment: Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NODE_EXTRA_CA_CERTS", str(deployment.cert))  # node trusts our cert
    params = deployment.server.params
    with anyio.fail_after(30):
        async with (
            JsPeer(deployment.nginx.ws_base, "proxied/doc", params) as alice,
            JsPeer(deployment.nginx.ws_base, "proxied/doc", params) as bob,
        ):
            assert deployment.nginx.ws_base.startswith("wss://127.0.0.1:")
            assert deployment.nginx.ws_base.endswith("/collab/ws")
            await alice.call({"op": "insert", "index": 0, "text": "through nginx, over TLS"})
            await bob.call({"op": "wait_text", "equals": "through nginx, over TLS"})


async def test_secure_cookie_login_and_origin_check_follow_the_public_url(
    deployment: Deployment,
) -> None:
    nginx, server = deployment.nginx, deployment.server
    async with httpx.AsyncClient(verify=deployment.context) as http:
        response = await http.get(f"{nginx.http_url}/login", params={"token": server.dev_token})
    assert response.status_code == 303
    assert response.headers["location"] == f"{nginx.origin}/collab/"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("__Host-collab_session=")
    for attribute in ("Secure", "HttpOnly", "Path=/", "SameSite=lax"):
        assert attribute.lower() in cookie.lower()
    secret = cookie.split(";", 1)[0].split("=", 1)[1]
    server.remember(secret)
    headers = {"Cookie": f"__Host-collab_session={secret}"}
    url = deployment.ws_url("cookies", "d", token="")
    with anyio.fail_after(20):
        peer = await RawPeer.connect(
            url, ssl=deployment.context, additional_headers={**headers, "Origin": nginx.origin}
        )
        await peer.close()
        with pytest.raises(InvalidStatus) as refused:
            async with connect(
                url,
                ssl=deployment.context,
                additional_headers={**headers, "Origin": "https://evil.example"},
            ):
                pass
        assert refused.value.response.status_code == 403


async def test_rate_limits_count_each_real_client_address(deployment: Deployment) -> None:
    url = deployment.ws_url("rl", "d")

    async def handshake(source: str) -> int:
        try:
            async with connect(url, ssl=deployment.context, local_addr=(source, 0)):
                return 101
        except InvalidStatus as exc:
            return exc.response.status_code

    with anyio.fail_after(20):
        first = [await handshake("127.0.0.2") for _ in range(4)]
        second = await handshake("127.0.0.3")
    assert first == [101, 101, 101, 429]
    assert second == 101, "another client behind the same proxy has its own budget"
