"""Who is this request or socket? One answer for HTTP and WebSocket alike.

Credentials, in order: a bearer token (``Authorization: Bearer`` or ``?token=``) — the dev
token in dev mode, a room token (JWT), a personal API token, or a single-use ticket — else the
session cookie. Presented-but-invalid credentials raise Unauthorized (4401 / 401); none at all
returns None, and the caller decides (WebSocket: 4401; the login page: offer to log in).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import HTTPConnection

from collab.auth.principal import Principal
from collab.auth.sessions import read_session_secret
from collab.auth.tokens import looks_like_jwt, verify_room_token
from collab.errors import Unauthorized
from collab.meta import MetaStore, User


def presented_token(conn: HTTPConnection) -> str | None:
    header = conn.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return conn.query_params.get("token") or None


def _principal(user: User, state: Any, **kw: Any) -> Principal:
    from collab.auth.admins import is_admin

    return Principal(
        user_id=user.id,
        name=user.name,
        email=user.email if user.email_verified else None,
        is_admin=is_admin(user, state.settings),
        **kw,
    )


async def _active_user(meta: MetaStore, user_id: str) -> User:
    user = await meta.get_user(user_id)
    if user is None or user.disabled:
        raise Unauthorized("unknown or disabled user")
    return user


async def authenticate(conn: HTTPConnection) -> Principal | None:
    state = conn.app.state
    meta: MetaStore = state.meta
    token = presented_token(conn)
    if token is not None:
        return await principal_for_token(state, meta, token)
    secret = read_session_secret(conn.cookies)
    if secret is None:
        return None
    session = await meta.get_session(secret)
    if session is None:
        raise Unauthorized("session expired or revoked")
    user = await _active_user(meta, session.user_id)
    return _principal(user, state, via="session", session_id=session.id)


async def principal_for_token(state: Any, meta: MetaStore, token: str) -> Principal:
    from collab.auth.devmode import is_dev_token

    if state.dev_mode and is_dev_token(state, token):
        user = await _active_user(meta, state.dev_user_id)
        return _principal(user, state, via="dev")
    if looks_like_jwt(token):
        claims = verify_room_token(state.secret_keys, token)
        user = await _active_user(meta, claims.user_id)
        return _principal(
            user,
            state,
            via="room_token",
            room_scope=claims.room_id,
            doc_pattern=claims.doc_pattern,
            role_ceiling=claims.role,
        )
    api_token = await meta.find_api_token(token)
    if api_token is not None:
        user = await _active_user(meta, api_token.user_id)
        return _principal(user, state, via="api_token", token_id=api_token.id)
    ticket = await meta.consume_ticket(token)
    if ticket is not None:
        user = await _active_user(meta, ticket.user_id)
        return _principal(
            user,
            state,
            via="ticket",
            room_scope=ticket.room_id,
            doc_pattern=ticket.doc,
            role_ceiling=ticket.role_ceiling,
        )
    raise Unauthorized("invalid or expired token")
