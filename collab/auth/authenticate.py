"""Who is this request or socket? One answer for HTTP and WebSocket alike.

Credentials, in order: a bearer token (``Authorization: Bearer`` or ``?token=``) — the dev
token in dev mode, a room token (JWT), a personal API token, or a single-use ticket — else the
session cookie. Presented-but-invalid credentials raise Unauthorized (4401 / 401); none at all
returns None, and the caller decides (WebSocket: 4401; the login page: offer to log in).

A presented credential is first checked against its address's failure budget
(``collab.auth.failures``: TooManyRequests, 429, while it is spent), and each one that fails is
spent from it and audited (``auth.failure``: the door, the kind of credential, the reason; never
the credential itself). The principal carries what the socket it may open lives on: the
session's or room token's end (``expires_at``) and the ids revoking closes it by.

A page may say whom it acts for (``X-Collab-User`` on HTTP, ``?as_user=`` on a socket): a
session cookie of another user is then refused (401 / 4401). The cookie is the browser
profile's, not the tab's: after another user signs in there, a tab still showing the last one
would otherwise post, edit and sync under the new user's name.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Protocol

from starlette.requests import HTTPConnection

from collab.auth.admins import is_admin
from collab.auth.devmode import is_dev_token
from collab.auth.failures import CredentialGuard, Door
from collab.auth.principal import Principal
from collab.auth.sessions import read_session_secret, secure_site
from collab.auth.tokens import looks_like_jwt, verify_room_token
from collab.errors import Unauthorized
from collab.meta import AuditEvent, MetaStore, User
from collab.ratelimit import client_address
from collab.settings import Settings

log = logging.getLogger("collab.auth")


class Verifier(Protocol):
    """What checking a credential needs: the app's Services provide it."""

    @property
    def settings(self) -> Settings: ...
    @property
    def meta(self) -> MetaStore: ...
    @property
    def secret_keys(self) -> list[str]: ...
    @property
    def dev_mode(self) -> bool: ...
    @property
    def dev_token(self) -> str: ...
    @property
    def dev_user_id(self) -> str: ...
    @property
    def credential_guard(self) -> CredentialGuard: ...


EXPECTED_USER_HEADER = "x-collab-user"
EXPECTED_USER_PARAM = "as_user"


def expected_user(conn: HTTPConnection) -> str | None:
    """The user the page that sent ``conn`` acts for, if it says so."""
    return conn.headers.get(EXPECTED_USER_HEADER) or conn.query_params.get(EXPECTED_USER_PARAM)


def presented_token(conn: HTTPConnection) -> str | None:
    header = conn.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return conn.query_params.get("token") or None


def _principal(user: User, settings: Settings, **kw: Any) -> Principal:
    return Principal(
        user_id=user.id,
        name=user.name,
        email=user.email if user.email_verified else None,
        is_admin=is_admin(user, settings),
        **kw,
    )


async def _active_user(meta: MetaStore, user_id: str) -> User:
    user = await meta.get_user(user_id)
    if user is None or user.disabled:
        raise Unauthorized("unknown or disabled user")
    return user


async def authenticate(conn: HTTPConnection, verifier: Verifier) -> Principal | None:
    """The principal behind ``conn``'s credential; None without one (see the module doc)."""
    token = presented_token(conn)
    secure = secure_site(verifier.settings.public_url, conn.url.scheme)
    secret = read_session_secret(conn.cookies, secure=secure) if token is None else None
    if token is None and secret is None:
        return None
    address = client_address(conn)
    door: Door = "socket" if conn.scope["type"] == "websocket" else "api"
    await verifier.credential_guard.check(address, door)
    try:
        if token is not None:
            return await principal_for_token(verifier, token)
        assert secret is not None
        return await _session_principal(verifier, secret, expected_user(conn))
    except Unauthorized as exc:
        await verifier.credential_guard.failed(address, door)
        kind = "session" if token is None else "room_token" if looks_like_jwt(token) else "token"
        detail = {"door": door, "credential": kind, "reason": exc.reason}
        event = AuditEvent(at=time.time(), action="auth.failure", detail=detail, ip=address)
        try:
            await verifier.meta.record(event)
        except Exception:
            log.exception("could not record a failed credential")
        raise


async def _session_principal(
    verifier: Verifier, secret: str, expected: str | None = None
) -> Principal:
    meta = verifier.meta
    session = await meta.get_session(secret)
    if session is None:
        raise Unauthorized("session expired or revoked")
    if expected is not None and expected != session.user_id:
        raise Unauthorized("signed in as another user")
    user = await _active_user(meta, session.user_id)
    return _principal(
        user,
        verifier.settings,
        via="session",
        session_id=session.id,
        expires_at=session.expires_at,
    )


async def principal_for_token(verifier: Verifier, token: str) -> Principal:
    meta, settings = verifier.meta, verifier.settings
    if verifier.dev_mode and is_dev_token(verifier, token):
        user = await _active_user(meta, verifier.dev_user_id)
        return _principal(user, settings, via="dev")
    if looks_like_jwt(token):
        # Bounded by the current token_max_ttl too: as long as a revocation is kept.
        claims = verify_room_token(verifier.secret_keys, token, max_ttl=settings.token_max_ttl)
        if await meta.room_token_revoked(claims.room_id, claims.token_id):
            raise Unauthorized("token revoked")
        user = await _active_user(meta, claims.user_id)
        return _principal(
            user,
            settings,
            via="room_token",
            room_scope=claims.room_id,
            doc_pattern=claims.doc_pattern,
            role_ceiling=claims.role,
            jti=claims.token_id,
            expires_at=claims.expires_at,
        )
    api_token = await meta.find_api_token(token)
    if api_token is not None:
        user = await _active_user(meta, api_token.user_id)
        return _principal(user, settings, via="api_token", token_id=api_token.id)
    ticket = await meta.consume_ticket(token)
    if ticket is not None:
        user = await _active_user(meta, ticket.user_id)
        # The ticket bounds the handshake only: the socket lives on whatever minted it.
        return _principal(
            user,
            settings,
            via="ticket",
            room_scope=ticket.room_id,
            doc_pattern=ticket.doc,
            role_ceiling=ticket.role_ceiling,
            session_id=ticket.session_id,
            token_id=ticket.api_token_id,
            expires_at=ticket.session_expires_at,
        )
    raise Unauthorized("invalid or expired token")
