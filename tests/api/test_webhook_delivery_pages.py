"""Paging a webhook's deliveries (``GET .../deliveries?limit=&cursor=``) lists each delivery
exactly once, on SQLite and on PostgreSQL (the pages asked of two nodes in turn); the memory
twin's listing: tests/meta/test_webhook_pages.py (its users cannot be made from outside).

One chat write can enqueue several deliveries for one endpoint at the same instant (a post
that mentions someone: ``message.posted`` and ``mention``, both stamped with the write's
clock), so a cursor of the last item's time alone cannot tell a page's last delivery from its
twin: the next page, "created before that time", skipped the twin."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.support.race import STORES, race, racing_servers

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("store", [s for s in STORES if s != "memory"])
async def test_paging_deliveries_one_at_a_time_lists_each_once(
    request: pytest.FixtureRequest, store: str
) -> None:
    servers = racing_servers(
        request, store, webhook_allow_http="true", webhook_allow_networks="127.0.0.1"
    )
    token = servers[0].dev_token
    (made,) = await race(servers, token, "POST", [("/rooms", {"id": "r"})])
    assert made.status_code == 201, made.text
    # Nothing listens there: the deliveries stay, failing and retried, all listed.
    body = {"url": "http://127.0.0.1:9/hook", "events": ["*"]}
    (hook,) = await race(servers, token, "POST", [("/rooms/r/webhooks", body)])
    assert hook.status_code == 201, hook.text
    servers[0].remember(hook.json()["secret"])
    hook_id = hook.json()["id"]
    alice = servers[0].create_user("alice")
    member = {"user_id": alice, "role": "editor"}
    (added,) = await race(servers, token, "POST", [("/rooms/r/members", member)])
    assert added.status_code == 201, added.text
    headers = {"authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(headers=headers, timeout=20) as http:
        base = f"{servers[0].http_url}/api/v1"
        for n in range(3):
            text = f"note {n} for @alice"
            r = await http.post(
                f"{base}/rooms/r/messages", json={"text": text, "client_id": f"{n}"}
            )
            assert r.status_code == 201, r.text
            assert r.json()["mentions"], "the mention makes a second delivery at the same time"
        path = f"/rooms/r/webhooks/{hook_id}/deliveries"
        whole = (await http.get(f"{base}{path}", params={"limit": 100})).json()["items"]
        assert len(whole) == 7  # member.added, then 2 a post
        paged: list[dict[str, Any]] = []
        cursor: str | None = None
        for page in range(10):
            node = servers[page % len(servers)].http_url
            params: dict[str, Any] = {"limit": 1, **({"cursor": cursor} if cursor else {})}
            r = await http.get(f"{node}/api/v1{path}", params=params)
            assert r.status_code == 200, r.text
            paged += r.json()["items"]
            cursor = r.json().get("next_cursor")
            if cursor is None:
                break
    assert [d["id"] for d in paged] == [d["id"] for d in whole]
