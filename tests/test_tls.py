"""wss:// straight from collab (uvicorn's TLS) with a self-signed certificate on loopback."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest
from pycrdt import Text

from tests.support.pyclient import provider
from tests.support.rawpeer import RawPeer
from tests.support.server import ServerFactory
from tests.support.tls import client_context, self_signed
from tests.support.waiting import wait_until

pytestmark = pytest.mark.anyio


async def test_wss_sync_with_a_self_signed_certificate(
    server_factory: ServerFactory, tmp_path: Path
) -> None:
    cert, key = self_signed(tmp_path)
    server = server_factory(ssl_certfile=cert, ssl_keyfile=key)
    assert server.ws_base.startswith("wss://")
    context = client_context(cert)
    with anyio.fail_after(20):
        writer = await RawPeer.connect(server.ws_url("tls", "d"), ssl=context)
        await writer.insert(0, "over TLS")
        async with provider(server.ws_url("tls", "d"), ssl=context) as (doc, _):
            text = doc.get("text", type=Text)
            await wait_until(lambda: str(text) == "over TLS", 20)
        await writer.close()
    # A client that does not trust the certificate is refused by TLS itself.
    with anyio.fail_after(10), pytest.raises(OSError):
        await RawPeer.connect(server.ws_url("tls", "d"))
