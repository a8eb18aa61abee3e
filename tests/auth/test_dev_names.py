"""Dev mode's named users (issue 10): the login page takes a display name, each name a
distinct ordinary user (roles apply), loopback only; the plain dev URL is the dev user still."""

from __future__ import annotations

import httpx

from tests.support.server import CollabServer


def sign_in(server: CollabServer, client: httpx.Client, **params: str) -> httpx.Response:
    return client.get(server.http_url + "/login", params={"token": server.dev_token, **params})


def test_each_display_name_is_a_user_of_its_own(server: CollabServer) -> None:
    who: dict[str, str] = {}
    for name in ("Alice", "Bob", "  alice  ", ""):
        with httpx.Client(timeout=10) as client:
            response = sign_in(server, client, name=name) if name else sign_in(server, client)
            assert response.status_code == 303, response.text
            me = client.get(server.http_url + "/auth/session").json()["user"]
            who[name] = me["id"]
            if name.strip() == "Alice":
                assert me["name"] in ("Alice", "alice")
            # Ordinary users: no room, no rights (the dev token's editor floor is not theirs).
            if name:
                rooms = client.get(server.http_url + "/api/v1/rooms").json()["items"]
                assert rooms == []
    assert who["Alice"] == who["  alice  "]  # the same name, case aside, is the same user
    assert len({who["Alice"], who["Bob"], who[""]}) == 3


def test_names_are_checked_and_loopback_only(server: CollabServer) -> None:
    with httpx.Client(timeout=10) as client:
        for bad in ("x" * 65, "tab\there\x00"):
            response = sign_in(server, client, name=bad)
            assert response.status_code == 401 and "display name" in response.text
        # Through a proxy (X-Forwarded-For from the trusted loopback), a remote browser: no.
        remote = client.get(
            server.http_url + "/login",
            params={"token": server.dev_token, "name": "Mallory"},
            headers={"X-Forwarded-For": "203.0.113.7"},
        )
        assert remote.status_code == 401 and "this machine only" in remote.text
        assert "collab_session" not in client.cookies
        # A wrong token with a name is a wrong token.
        wrong = client.get(server.http_url + "/login", params={"token": "nope", "name": "Eve"})
        assert wrong.status_code == 401 and "is not this server" in wrong.text
    # The dev login page offers the name field.
    page = httpx.get(server.http_url + "/", timeout=10)
    assert page.status_code == 401 and "name='name'" in page.text
