"""Access on the socket path, against a real server: read-only peers, tokens, Origin, logs."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import anyio
import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from collab.auth.keys import load_secret_keys
from collab.auth.tokens import mint_room_token
from collab.meta import MetaStore, Role
from collab.settings import Settings
from tests.support.jspeer import JsPeer
from tests.support.pyclient import provider
from tests.support.race import STORES, race, racing_servers
from tests.support.rawpeer import RawPeer, close_code_of
from tests.support.server import CollabServer, ServerFactory
from tests.support.waiting import wait_until

pytestmark = pytest.mark.anyio


@pytest.mark.node
async def test_viewers_converge_and_leave_the_server_doc_unchanged(server: CollabServer) -> None:
    editor = await RawPeer.connect(server.ws_url("ro", "d"))  # the dev user creates the room
    viewer_token = server.mint_token("vic", "ro", "viewer")
    params = {"token": viewer_token}
    stop = asyncio.Event()

    async def type_steadily() -> None:
        k = 0
        while not stop.is_set():
            k += 1
            await editor.insert(len(editor.text), f"<{k}>")
            await asyncio.sleep(0.01)  # pacing: a person typing, concurrently with the viewers

    typing = asyncio.get_running_loop().create_task(type_steadily())
    with anyio.fail_after(60):
        async with (
            JsPeer(server.ws_base, "ro/d", params) as fresh,
            JsPeer(server.ws_base, "ro/d", params) as offline,
            provider(server.ws_url("ro", "d", token=viewer_token)) as (py_doc, _),
        ):
            from pycrdt import Text

            py_text = py_doc.get("text", type=Text)
            py_text += "python viewer edit"  # refused, and its echoes must be harmless
            await offline.call({"op": "disconnect"})
            await offline.call({"op": "insert", "index": 0, "text": "edited while offline"})
            await offline.call({"op": "connect"})
            await fresh.call({"op": "insert", "index": 0, "text": "fresh viewer edit"})
            await asyncio.sleep(0.5)  # the scenario: the editor types on around the refused edits
            stop.set()
            await typing
            expected = str(editor.text)

            # Each viewer keeps its own refused edit locally (a CRDT cannot take it back; it
            # may sit anywhere among the editor's concurrent inserts) and has all of the rest.
            async def converged(text: Callable[[], Awaitable[str]], own: str) -> None:
                current = ""

                async def has_the_rest() -> bool:
                    nonlocal current
                    current = await text()
                    return current.replace(own, "", 1) == expected

                await wait_until(
                    has_the_rest, 10, interval=0.05, what=lambda: f"viewer has {current[:200]!r}"
                )

            async def py_current() -> str:
                return str(py_text)

            await converged(fresh.text, "fresh viewer edit")
            await converged(offline.text, "edited while offline")
            await converged(py_current, "python viewer edit")
            assert fresh.count_events("close") == 0
            assert offline.count_events("close") == 1  # its own disconnect, nothing else
            for viewer in (fresh, offline):
                assert viewer.count_events("permission-denied") == 1
    fresh_reader = await RawPeer.connect(server.ws_url("ro", "d"))
    assert str(fresh_reader.text) == expected
    assert editor.close_code is None
    for peer in (editor, fresh_reader):
        await peer.close()


async def test_token_cases(server: CollabServer) -> None:
    editor_token = server.mint_token("eve", "t1", "editor")
    server.mint_token("someone", "t2", "editor")  # another room
    keys = load_secret_keys(Settings(store=server.store))

    async def eve_id(meta: MetaStore) -> str:
        users = await meta.list_users()
        return next(u.id for u in users if u.subject == "eve")

    user_id = server.with_meta(eve_id)
    expired = mint_room_token(
        keys, user_id=user_id, room_id="t1", role=Role.editor, ttl=60, now=time.time() - 3600
    )
    forged = mint_room_token(
        ["another-key-0123456789abcdef"], user_id=user_id, room_id="t1", role=Role.editor, ttl=60
    )
    tampered = editor_token[:-4] + ("AAAA" if not editor_token.endswith("AAAA") else "BBBB")
    with anyio.fail_after(30):
        writer = await RawPeer.connect(server.ws_url("t1", "d", token=editor_token))
        await writer.insert(0, "by eve")
        await writer.close()
        assert await close_code_of(server.ws_url("t1", "d", token=editor_token)) is None
        assert await close_code_of(server.ws_url("t1", "d", token=expired)) == 4401
        assert await close_code_of(server.ws_url("t1", "d", token=forged)) == 4401
        assert await close_code_of(server.ws_url("t1", "d", token=tampered)) == 4401
        assert await close_code_of(server.ws_url("t1", "d", token="")) == 4401
        assert await close_code_of(server.ws_url("t2", "d", token=editor_token)) == 4403

        # Ceiling exceeded: a token claiming more than the member's role grants only the role.
        server.with_meta(lambda meta: meta.set_member("t1", user_id, Role.viewer))
        peer = await RawPeer.connect(server.ws_url("t1", "d", token=editor_token))
        await peer.insert(0, "should not land")
        await peer.wait_for(lambda: bool(peer.other_frames))
        assert peer.other_frames[0][0] == 2  # permission denied
        await peer.close()
        reader = await RawPeer.connect(server.ws_url("t1", "d"))
        assert "should not land" not in str(reader.text)
        await reader.close()

        # A single-use ticket works once.
        ticket = server.with_meta(lambda meta: meta.create_ticket(user_id, "t1", None, None, 30.0))
        assert await close_code_of(server.ws_url("t1", "d", token=ticket)) is None
        assert await close_code_of(server.ws_url("t1", "d", token=ticket)) == 4401
    # Nothing minted here appears anywhere in the server's log.
    log = server.log()
    for secret in (editor_token, expired, forged, tampered, ticket):
        assert secret not in log
    # The dev token appears exactly once: in the login URL printed at start, as designed.
    assert log.count(server.dev_token) == 1


async def test_cookie_socket_from_a_foreign_origin_is_refused(server: CollabServer) -> None:
    async def session(meta: MetaStore) -> str:
        users = await meta.list_users()
        dev = next(u for u in users if u.subject == "dev")
        _, secret = await meta.create_session(dev.id, 3600)
        return secret

    secret = server.with_meta(session)
    url = server.ws_url("cs", "d", token="")
    cookie = {"Cookie": f"collab_session={secret}"}
    with anyio.fail_after(20):
        with pytest.raises(InvalidStatus) as refused:
            async with connect(
                url, additional_headers={**cookie, "Origin": "https://evil.example"}
            ):
                pass
        assert refused.value.response.status_code == 403
        own = f"http://127.0.0.1:{server.port}"
        assert await close_code_of(url, additional_headers={**cookie, "Origin": own}) is None
        # Without the cookie (and without a token) the same socket is unauthenticated.
        assert await close_code_of(url, additional_headers={"Origin": own}) == 4401
    assert secret not in server.log()


async def test_handshakes_and_logins_are_rate_limited_per_real_address(
    server_factory: ServerFactory,
) -> None:
    server = server_factory(handshake_rate=0.01, handshake_burst=3, login_rate=0.01, login_burst=2)
    url = server.ws_url("rl", "d")
    behind_proxy = {"X-Forwarded-For": "203.0.113.7"}  # the proxy (loopback) is trusted
    with anyio.fail_after(30):
        for _ in range(3):
            assert await close_code_of(url, additional_headers=behind_proxy) is None
        with pytest.raises(InvalidStatus) as refused:
            async with connect(url, additional_headers=behind_proxy):
                pass
        assert refused.value.response.status_code == 429
        # Another client behind the same proxy has its own budget.
        other = {"X-Forwarded-For": "203.0.113.8"}
        assert await close_code_of(url, additional_headers=other) is None

        async with httpx.AsyncClient(base_url=server.http_url) as http:
            statuses = [
                (
                    await http.get("/login", params={"token": "guess"}, headers=behind_proxy)
                ).status_code
                for _ in range(3)
            ]
        assert statuses[-1] == 429 and 429 not in statuses[:2]


async def test_new_docs_past_the_rooms_cap_are_refused(
    server_factory: ServerFactory,
) -> None:
    server = server_factory(max_docs_per_room=2)
    with anyio.fail_after(30):
        for doc in ("d1", "d2"):
            peer = await RawPeer.connect(server.ws_url("capped", doc))
            await peer.insert(0, doc)
            await peer.request_saved(1)
            await peer.wait_for(lambda p=peer: p.saved == 1)
            await peer.close()
        assert await close_code_of(server.ws_url("capped", "d3")) == 4403
        # Existing docs stay open to their editors.
        assert await close_code_of(server.ws_url("capped", "d1")) is None


@pytest.mark.parametrize("store", STORES)
async def test_new_docs_written_at_once_stay_within_the_doc_cap(
    request: pytest.FixtureRequest, store: str
) -> None:
    """16 sockets join 16 new docs (each passes the join's count: nothing is stored yet), then
    each writes its first update: all 16 were stored for a cap of 2. The cap is counted again
    where the first update creates the doc, in the same step: the others close 4403."""
    servers = racing_servers(request, store, max_docs_per_room=2)
    with anyio.fail_after(60):
        peers = [
            await RawPeer.connect(servers[i % len(servers)].ws_url("capped", f"d{i}"))
            for i in range(16)
        ]
        for peer in peers:
            await peer.insert(0, "x")
            await peer.request_saved(1)
        for peer in peers:
            await peer.wait_for(lambda p=peer: p.saved == 1 or p.closed.is_set())
        refused = [peer.close_code for peer in peers if peer.saved != 1]
        (listed,) = await race(servers, servers[0].dev_token, "GET", [("/rooms/capped/docs", None)])
        for peer in peers:
            await peer.close()
    assert len(listed.json()["items"]) == 2
    assert refused == [4403] * 14


async def test_described_docs_count_against_the_cap_on_sockets_too(
    server_factory: ServerFactory,
) -> None:
    """Docs that only have metadata yet (described through the API) count against the cap
    where a socket creates a doc, as they do in the API; they stay open to their editors."""
    server = server_factory(max_docs_per_room=2)
    headers = {"authorization": f"Bearer {server.dev_token}"}
    async with httpx.AsyncClient(base_url=server.http_url + "/api/v1", headers=headers) as http:
        assert (await http.post("/rooms", json={"id": "capped"})).status_code == 201
        for doc in ("d1", "d2"):
            r = await http.patch(f"/rooms/capped/docs/{doc}", json={"title": doc})
            assert r.status_code == 201, r.text
    with anyio.fail_after(30):
        assert await close_code_of(server.ws_url("capped", "d3")) == 4403
        peer = await RawPeer.connect(server.ws_url("capped", "d1"))
        await peer.insert(0, "d1")
        await peer.request_saved(1)
        await peer.wait_for(lambda: peer.saved == 1)
        await peer.close()


@pytest.mark.parametrize("store", STORES)
async def test_a_doc_described_after_a_sockets_join_counts_at_its_first_update(
    request: pytest.FixtureRequest, store: str
) -> None:
    """A socket joins a new doc while the room has room for it; a doc described through the
    API then fills the room. The socket's first update counts the described doc too, in the
    step that creates its doc: 4403, nothing stored (memory:// counted its stored docs only
    there, and took the doc past the cap)."""
    servers = racing_servers(request, store, max_docs_per_room=2)
    headers = {"authorization": f"Bearer {servers[0].dev_token}"}
    base = servers[0].http_url + "/api/v1"
    async with httpx.AsyncClient(base_url=base, headers=headers) as http:
        assert (await http.post("/rooms", json={"id": "capped"})).status_code == 201
        assert (await http.patch("/rooms/capped/docs/d1", json={"title": "1"})).status_code == 201
        with anyio.fail_after(30):
            peer = await RawPeer.connect(servers[-1].ws_url("capped", "d3"))
            r = await http.patch("/rooms/capped/docs/d2", json={"title": "2"})
            assert r.status_code == 201, r.text
            await peer.insert(0, "x")
            await peer.request_saved(1)
            await peer.wait_for(lambda: peer.saved == 1 or peer.closed.is_set())
            await peer.close()
        listed = (await http.get("/rooms/capped/docs")).json()["items"]
    assert peer.close_code == 4403
    assert [doc["name"] for doc in listed] == ["d1", "d2"]


async def test_failed_credentials_are_rate_limited_per_address(server: CollabServer) -> None:
    """300 wrong bearer tokens: 429 past the budget, counted, audited without the token, and
    the same on the socket (issue 8, item 6)."""
    guesser = {"X-Forwarded-For": "198.51.100.7"}  # the real address behind a trusted proxy
    guesses = [f"guess-{i:04d}-of-a-token" for i in range(300)]
    async with httpx.AsyncClient(base_url=server.http_url, timeout=10) as http:
        statuses = []
        for guess in guesses:
            headers = {**guesser, "Authorization": f"Bearer {guess}"}
            statuses.append((await http.get("/api/v1/me", headers=headers)).status_code)
        burst = Settings().auth_failure_burst
        assert statuses[:burst] == [401] * burst
        assert statuses.count(401) <= burst + 3  # a refill or two while guessing
        assert statuses[-1] == 429 and statuses.count(429) >= 300 - burst - 3
        limited = await http.get("/api/v1/me", headers={**guesser, "Authorization": "Bearer x"})
        assert limited.json()["error"]["code"] == "rate_limited"
        assert int(limited.headers["retry-after"]) >= 1
        # The right token from that address is refused unchecked too: no right-or-wrong oracle.
        right = {**guesser, "Authorization": f"Bearer {server.dev_token}"}
        assert (await http.get("/api/v1/me", headers=right)).status_code == 429
        # Another client keeps its own budget; requests without credentials guess nothing.
        other = {"X-Forwarded-For": "198.51.100.8", "Authorization": f"Bearer {server.dev_token}"}
        assert (await http.get("/api/v1/me", headers=other)).status_code == 200
        assert (await http.get("/api/v1/me", headers=guesser)).status_code == 401
        metrics = (await http.get("/metrics")).text
    with anyio.fail_after(30):
        # The socket: the limited address is refused before accept, right token or not.
        for token in ("another-guess-of-a-token", server.dev_token):
            url = server.ws_url("g", "d", token=token)
            with pytest.raises(InvalidStatus) as refused:
                async with connect(url, additional_headers=guesser):
                    pass
            assert refused.value.response.status_code == 429
        # Socket failures spend the same budget: a fresh address gets 4401s, then 429.
        fresh = {"X-Forwarded-For": "198.51.100.9"}
        for i in range(burst):
            url = server.ws_url("g", "d", token=f"socket-guess-{i}")
            assert await close_code_of(url, additional_headers=fresh) == 4401
        url = server.ws_url("g", "d", token="one-more")
        with pytest.raises(InvalidStatus) as refused:
            async with connect(url, additional_headers=fresh):
                pass
        assert refused.value.response.status_code == 429

    def counted(door: str, outcome: str) -> float:
        name = f'collab_credential_failures_total{{door="{door}",outcome="{outcome}"}} '
        return float(metrics.split(name, 1)[1].split()[0])

    assert counted("api", "failed") == statuses.count(401)
    assert counted("api", "limited") == statuses.count(429) + 2
    failures = server.with_meta(lambda meta: meta.list_audit(limit=500))
    audited = [e for e in failures if e.action == "auth.failure"]
    assert {e.ip for e in audited} == {"198.51.100.7", "198.51.100.9"}
    assert {e.detail["door"] for e in audited} == {"api", "socket"}
    text = str([(e.detail, e.target, e.actor) for e in audited])
    assert not any(guess in text for guess in guesses) and "socket-guess" not in text
