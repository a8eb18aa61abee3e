"""Logout (issue 8, item 11): ``GET /logout`` only asks, ``POST /logout`` from this site ends
the session. A cross-site link, image or form therefore logs nobody out (dev mode here; the
OIDC flow's logout is tested in test_login.py)."""

from __future__ import annotations

import anyio
import httpx
import pytest

from collab.meta import MetaStore
from tests.support.rawpeer import RawPeer
from tests.support.server import CollabServer

pytestmark = pytest.mark.anyio


def dev_session(server: CollabServer) -> str:
    async def create(meta: MetaStore) -> str:
        dev = next(u for u in await meta.list_users() if u.subject == "dev")
        return (await meta.create_session(dev.id, 3600))[1]

    return server.remember(server.with_meta(create))


async def test_get_logout_asks_and_changes_nothing(server: CollabServer) -> None:
    cookie = {"Cookie": f"collab_session={dev_session(server)}"}
    own = f"http://127.0.0.1:{server.port}"
    async with httpx.AsyncClient(base_url=server.http_url, timeout=10) as http:
        with anyio.fail_after(20):
            peer = await RawPeer.connect(
                server.ws_url("lo", "d", token=""), additional_headers={**cookie, "Origin": own}
            )
            for _ in range(3):  # a link, an <img>, a prefetch: all GETs
                page = await http.get("/logout", headers=cookie)
                assert page.status_code == 200
                assert "<form method='post' action='logout'>" in page.text
                assert page.headers["cache-control"] == "no-store"
                assert page.headers["x-frame-options"] == "DENY"  # not clickable through a frame
                assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
                assert "set-cookie" not in page.headers
            assert (await http.get("/auth/session", headers=cookie)).status_code == 200
            await peer.request_saved(1)
            await peer.wait_for(lambda: peer.saved == 1 or peer.close_code is not None)
            assert peer.close_code is None, "a GET closed the session's socket"
            await peer.close()
        # Without a session there is nothing to confirm.
        assert "signed out" in (await http.get("/logout")).text


async def test_post_logout_needs_this_sites_origin(server: CollabServer) -> None:
    cookie = {"Cookie": f"collab_session={dev_session(server)}"}
    own = f"http://127.0.0.1:{server.port}"
    async with httpx.AsyncClient(base_url=server.http_url, timeout=10) as http:
        for refused in ({"Origin": "https://attacker.example"}, {"Origin": "null"}, {}):
            answer = await http.post("/logout", headers={**cookie, **refused})
            assert answer.status_code == 403, refused
            assert "set-cookie" not in answer.headers
            assert (await http.get("/auth/session", headers=cookie)).status_code == 200
        done = await http.post("/logout", headers={**cookie, "Origin": own})
        assert done.status_code == 200 and 'collab_session=""' in done.headers["set-cookie"]
        assert (await http.get("/auth/session", headers=cookie)).status_code == 401
    actions = [e.action for e in server.with_meta(lambda meta: meta.list_audit(limit=20))]
    assert actions.count("logout") == 1
