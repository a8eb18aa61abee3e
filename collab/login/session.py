"""The browser's server-side session: who is signed in, start one, end one, audit each step.

A new login replaces the browser's previous session; revoking a session closes the sockets it
opened at once (4401), not at their next reconnect. Nothing here logs a token or cookie.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from collab.auth.sessions import read_session_secret, secure_site, set_session_cookie
from collab.meta import AuditEvent, Session, User
from collab.services import services

log = logging.getLogger("collab.login")


def base_url(request: Request) -> str:
    settings = services(request).settings
    return (settings.public_url or str(request.base_url)).rstrip("/")


def is_secure(request: Request) -> bool:
    """Whether cookies must be Secure: an https public URL, or this request came over https."""
    return secure_site(services(request).settings.public_url, request.url.scheme)


async def current_user(request: Request) -> tuple[Session, User] | None:
    """The live session of this browser and its user, or None (unknown, revoked, disabled)."""
    secret = read_session_secret(request.cookies, secure=is_secure(request))
    if secret is None:
        return None
    meta = services(request).meta
    session = await meta.get_session(secret)
    if session is None:
        return None
    user = await meta.get_user(session.user_id)
    if user is None or user.disabled:
        return None
    return session, user


async def audit(request: Request, action: str, actor: str | None = None, **detail: Any) -> None:
    """Record a login step; a failed login is counted too (``collab_login_failures``)."""
    shared = services(request)
    ip = request.client.host if request.client else None
    if action == "login.failure":
        shared.metrics.login_failed(detail.get("via"))
    try:
        await shared.meta.record(
            AuditEvent(at=time.time(), action=action, actor=actor, detail=detail, ip=ip)
        )
    except Exception:
        log.exception("could not record audit event %s", action)


def close_session_sockets(request: Request, session_id: str, user_id: str) -> None:
    """A revoked session's open sockets close at once (4401), not at their next reconnect,
    on every node (the others recheck ``user_id``'s sockets)."""
    services(request).registry.revoke(
        4401,
        "session revoked",
        lambda peer: peer.principal is not None and peer.principal.session_id == session_id,
        user=user_id,
    )


async def start_session(request: Request, user: User, landing: str) -> tuple[Response, Session]:
    """Sign ``user`` in on this browser (replacing its old session) and redirect to landing."""
    shared = services(request)
    previous = await current_user(request)
    if previous is not None:  # a new login replaces this browser's old session
        await shared.meta.revoke_session(previous[0].id)
        close_session_sockets(request, previous[0].id, previous[0].user_id)
    ttl = shared.settings.session_ttl
    session, secret = await shared.meta.create_session(user.id, ttl)
    response = RedirectResponse(landing, status_code=303)
    set_session_cookie(response, secret, secure=is_secure(request), max_age=int(ttl))
    return response, session
