"""Credentials at their edges (each found in review): a room token or ticket narrowed to some
docs reaches no chat through the API either; over https only the ``__Host-`` session cookie
signs a browser in; a store URL's password never reaches the log."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from starlette.requests import HTTPConnection

from collab.auth.authenticate import authenticate
from collab.auth.failures import CredentialGuard
from collab.auth.keys import load_secret_keys
from collab.auth.redact import redact_url
from collab.auth.sessions import COOKIE
from collab.meta.memory import MemoryMetaStore
from collab.ratelimit import RateLimiter
from collab.settings import Settings
from tests.api.conftest import Api
from tests.support.server import CollabServer


@pytest.fixture
def api(server: CollabServer) -> Iterator[Api]:
    helper = Api(server)
    yield helper
    helper.close()


def test_a_room_token_limited_to_other_docs_cannot_read_or_post_the_chat(api: Api) -> None:
    """docs/search.md: a token limited by its ``docs`` pattern sees "the chat only if the
    pattern matches ``chat``"; the socket refuses ``/ws/r/chat`` to it (4403), and so does the
    messages API, reading and posting (403; before: 200)."""
    alice, bob = api.user("alice"), api.user("bob")
    api.room("r", owner=alice, **{bob.user_id: "editor"})
    assert alice.http.post(
        "/rooms/r/messages", json={"text": "secret", "client_id": "c1"}
    ).is_success
    minted = bob.http.post("/rooms/r/tokens", json={"docs": "notes", "role": "editor"})
    assert minted.status_code == 201, minted.text
    narrowed = api.bearer(api.server.remember(minted.json()["token"]))
    read = narrowed.get("/rooms/r/messages")
    assert read.status_code == 403, read.text  # today: 200 with the chat history
    post = narrowed.post("/rooms/r/messages", json={"text": "x", "client_id": "c2"})
    assert post.status_code == 403, post.text  # today: 201


def test_a_ticket_for_one_doc_cannot_read_the_chat(api: Api) -> None:
    """A ticket minted for doc ``notes`` opens ``/ws/r/notes`` only, and on the API it reads
    no chat either (403; before: 200)."""
    alice = api.user("alice")
    api.room("r", owner=alice)
    assert alice.http.post(
        "/rooms/r/messages", json={"text": "secret", "client_id": "c1"}
    ).is_success
    ticket = alice.http.post("/rooms/r/tickets", json={"doc": "notes"}).json()["ticket"]
    read = api.bearer(api.server.remember(ticket)).get("/rooms/r/messages")
    assert read.status_code == 403, read.text


class _Verifier:
    def __init__(self, settings: Settings, meta: MemoryMetaStore) -> None:
        self.settings = settings
        self.meta = meta
        self.secret_keys = ["k" * 32]
        self.dev_mode = False
        self.dev_token = ""
        self.dev_user_id = ""
        self.credential_guard = CredentialGuard(RateLimiter(rate=1, burst=100))


def _conn(cookie: str) -> HTTPConnection:
    scope = {
        "type": "http",
        "method": "GET",
        "scheme": "https",
        "path": "/api/v1/me",
        "query_string": b"",
        "headers": [(b"host", b"collab.example"), (b"cookie", cookie.encode())],
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 443),
    }
    return HTTPConnection(scope)


@pytest.mark.anyio
async def test_over_https_only_the_host_prefixed_cookie_is_a_session() -> None:
    """Over https the cookie is ``__Host-collab_session``: a sibling subdomain or a network
    attacker on plain http can set a plain ``collab_session`` for the host but never a
    ``__Host-`` one, so only the prefixed cookie is a session there (before: a planted plain
    cookie signed the victim in as the attacker, a login CSRF)."""
    settings = Settings(
        public_url="https://collab.example",
        oidc_issuer="https://idp.example",
        oidc_client_id="c",
        oidc_client_secret="s",
    )
    meta = MemoryMetaStore()
    user = await meta.upsert_oidc_user(
        "https://idp.example",
        "mallory",
        name="Mallory",
        email=None,
        email_verified=False,
        picture=None,
    )
    _, attackers_secret = await meta.create_session(user.id, 3600)
    planted = await authenticate(_conn(f"{COOKIE}={attackers_secret}"), _Verifier(settings, meta))
    assert planted is None  # today: the attacker's principal


def test_a_postgres_store_url_password_is_not_logged(caplog: pytest.LogCaptureFixture) -> None:
    """Without a data directory the log says where the secret key lives, naming the store:
    a ``postgresql://user:password@host/db`` URL's password is masked there (and by the
    log filter's URL redaction everywhere else)."""
    settings = Settings(store="postgresql://collab:hunter2-db-pass@127.0.0.1/collab")
    with caplog.at_level(logging.INFO, logger="collab.auth.keys"):
        load_secret_keys(settings)
    assert "hunter2-db-pass" not in caplog.text


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://collab:pw@127.0.0.1/db", "postgresql://collab:***@127.0.0.1/db"),
        ("redis://:secret@h:6379/0", "redis://:***@h:6379/0"),
        ("postgresql://collab@127.0.0.1/db", "postgresql://collab@127.0.0.1/db"),
        ("sqlite:///var/lib/collab/collab.db", "sqlite:///var/lib/collab/collab.db"),
    ],
)
def test_a_urls_password_is_redacted(url: str, shown: str) -> None:
    assert redact_url(url) == shown
