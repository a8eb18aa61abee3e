from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from tests.support.server import CollabServer


@dataclass
class Actor:
    """A user with a credential, and an HTTP client for /api/v1 that presents it."""

    user_id: str
    token: str
    http: httpx.Client


class Api:
    def __init__(self, server: CollabServer) -> None:
        self.server = server
        self._clients: list[httpx.Client] = []
        self.dev = self._actor("", server.dev_token)
        self.dev.user_id = self.dev.http.get("/me").json()["id"]

    def _client(self, headers: dict[str, str] | None = None) -> httpx.Client:
        client = httpx.Client(
            base_url=self.server.http_url + "/api/v1", headers=headers or {}, timeout=10
        )
        self._clients.append(client)
        return client

    def _actor(self, user_id: str, token: str) -> Actor:
        return Actor(user_id, token, self._client({"authorization": f"Bearer {token}"}))

    def user(self, name: str, *, email: str | None = None, verified: bool = False) -> Actor:
        """A new user with a personal API token."""
        user_id = self.server.create_user(name, email=email, verified=verified)
        return self._actor(user_id, self.server.api_token(user_id))

    def anonymous(self) -> httpx.Client:
        return self._client()

    def bearer(self, token: str) -> httpx.Client:
        """A client presenting any bearer credential (a room token, a ticket...)."""
        return self._client({"authorization": f"Bearer {token}"})

    def cookie_client(self, user_id: str, origin: str | None) -> httpx.Client:
        """A browser-like client: the session cookie, and an Origin header if given."""
        client = self._client({"origin": origin} if origin else {})
        client.cookies.set("collab_session", self.server.session(user_id))
        return client

    def room(self, room_id: str, owner: Actor | None = None, **members: str) -> str:
        """Create a room (dev user owns it by default) and add members by user id -> role."""
        owner = owner or self.dev
        r = owner.http.post("/rooms", json={"id": room_id, "title": room_id})
        assert r.status_code == 201, r.text
        for user_id, role in members.items():
            r = owner.http.post(
                f"/rooms/{room_id}/members", json={"user_id": user_id, "role": role}
            )
            assert r.status_code == 201, r.text
        return room_id

    def close(self) -> None:
        for client in self._clients:
            client.close()


@pytest.fixture
def api(server: CollabServer) -> Iterator[Api]:
    helper = Api(server)
    yield helper
    helper.close()


def assert_error(response: httpx.Response, status: int, code: str | None = None) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and isinstance(body["error"]["message"], str), body
    if code is not None:
        assert body["error"]["code"] == code, body
