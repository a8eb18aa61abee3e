"""A page says whom it acts for (``X-Collab-User``, ``?as_user=``): a session cookie of another
user (someone else signed in in this browser profile since the page loaded) is refused, 401 on
the API and 4401 on a socket, instead of being used under the page's nose."""

from __future__ import annotations

import anyio
import httpx
import pytest

from tests.support.rawpeer import RawPeer, close_code_of
from tests.support.server import CollabServer, ServerFactory


@pytest.mark.anyio
async def test_a_cookie_of_another_user_than_the_page_acts_for_is_refused(
    server: CollabServer,
) -> None:
    alice, bob = server.create_user("Alice"), server.create_user("Bob")
    own = f"http://127.0.0.1:{server.port}"
    cookie = {"Cookie": f"collab_session={server.session(bob)}", "Origin": own}
    with anyio.fail_after(20):
        async with httpx.AsyncClient(base_url=server.http_url + "/api/v1") as http:
            assert (await http.get("/rooms", headers=cookie)).status_code == 200
            mine = await http.get("/rooms", headers={**cookie, "X-Collab-User": bob})
            assert mine.status_code == 200
            made = await http.post(
                "/rooms", json={"id": "r", "title": "R"}, headers={**cookie, "X-Collab-User": alice}
            )
            assert made.status_code == 401, made.text
            assert (await http.get("/rooms/r", headers=cookie)).status_code == 404
            own_room = await http.post("/rooms", json={"id": "b", "title": "B"}, headers=cookie)
            assert own_room.status_code == 201
        as_alice = server.ws_url("b", "notes", f"as_user={alice}", token="")
        assert await close_code_of(as_alice, additional_headers=cookie) == 4401
        as_bob = server.ws_url("b", "notes", f"as_user={bob}", token="")
        peer = await RawPeer.connect(as_bob, additional_headers=cookie)
        await peer.close()


@pytest.mark.anyio
async def test_whom_a_page_names_tells_it_nothing_and_binds_only_a_cookie(
    server: CollabServer,
) -> None:
    """The refusal reads the same whoever the page names (a real other user, nobody, a long or
    odd string), so it tells the page nothing; a bearer credential carries its user itself and
    is not bound by the header (a script sending one is not a page in a shared browser)."""
    alice, bob = server.create_user("Alice"), server.create_user("Bob")
    own = f"http://127.0.0.1:{server.port}"
    cookie = {"Cookie": f"collab_session={server.session(bob)}", "Origin": own}
    bearer = {"Authorization": f"Bearer {server.api_token(bob)}"}
    with anyio.fail_after(20):
        async with httpx.AsyncClient(base_url=server.http_url + "/api/v1") as http:
            answers = set()
            for named in (alice, "u-does-not-exist", "x" * 4000, "\u00e9\u00ff"):
                # header values are bytes on the wire: the last is two latin-1 bytes, not UTF-8
                raw = {k.encode(): v.encode() for k, v in cookie.items()}
                raw[b"x-collab-user"] = named.encode("latin-1")
                refused = await http.get("/rooms", headers=raw)
                assert refused.status_code == 401, refused.text
                answers.add(refused.text)
            assert len(answers) == 1
            own_calls = await http.get("/rooms", headers={**bearer, "X-Collab-User": alice})
            assert own_calls.status_code == 200


@pytest.mark.anyio
async def test_a_flood_of_mismatches_is_cut_as_failed_credentials(
    server_factory: ServerFactory,
) -> None:
    """A page naming another user than its cookie's is a failed credential: past the address's
    failure burst its calls get 429 unchecked, as a flood of bad credentials does."""
    server = server_factory(auth_failure_burst=3, auth_failure_rate=0.01)
    alice, bob = server.create_user("Alice"), server.create_user("Bob")
    own = f"http://127.0.0.1:{server.port}"
    cookie = {"Cookie": f"collab_session={server.session(bob)}", "Origin": own}
    with anyio.fail_after(20):
        async with httpx.AsyncClient(base_url=server.http_url + "/api/v1") as http:
            statuses = [
                (await http.get("/rooms", headers={**cookie, "X-Collab-User": alice})).status_code
                for _ in range(5)
            ]
    assert statuses == [401, 401, 401, 429, 429]
