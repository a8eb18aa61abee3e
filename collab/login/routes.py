"""Login, callback, logout and the signed-in landing page (OIDC, or dev mode's token).

``GET /login`` starts an OIDC login (or, in dev mode, trades ``?token=`` for a session);
``GET /auth/callback`` finishes it; ``GET``/``POST /logout`` revoke the server-side session and,
where the provider offers it, log out there too (RP-initiated logout). ``GET /auth/session``
tells a front end who is signed in. Refusals of a callback are 400 JSON errors; every login,
failed login and logout is audited. Nothing here logs a token, code or cookie.
"""

from __future__ import annotations

import html
import logging
import time
from typing import Any

from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from collab.auth import devmode, oidc
from collab.auth.admins import is_admin
from collab.auth.sessions import clear_session_cookie, read_session_secret, set_session_cookie
from collab.errors import LoginRefused, error_response, json_error
from collab.meta.base import AuditEvent, MetaStore, Session, User
from collab.ratelimit import client_address
from collab.settings import Settings

log = logging.getLogger("collab.auth.routes")

ID_TOKEN_KEY = "id_token:"  # MetaStore cache key prefix: the ID token kept for logout
NEXT_KEY = "collab_next"  # where to land after login, in the signed login cookie


def auth_routes(settings: Settings) -> list[BaseRoute]:
    return [
        Route("/", home, methods=["GET"], name="home"),
        Route("/login", login, methods=["GET"], name="login"),
        Route("/auth/callback", callback, methods=["GET"], name="auth_callback"),
        Route("/auth/session", session_info, methods=["GET"], name="auth_session"),
        Route("/logout", logout, methods=["GET", "POST"], name="logout"),
    ]


class LoginSessionMiddleware:
    """Starlette's signed-cookie SessionMiddleware, carrying only Authlib's per-login marker.

    Pure ASGI, HTTP only. The signing key is the first of ``app.state.secret_keys``, which the
    lifespan loads, so the inner middleware is built on the first request. A key rotation only
    invalidates logins in flight (the cookie lives ``oidc.LOGIN_TTL`` seconds).
    """

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.secure = secure_public_url(settings)
        self._inner: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self._inner is None:
            keys: list[str] = scope["app"].state.secret_keys
            self._inner = SessionMiddleware(
                self.app,
                secret_key=keys[0],
                session_cookie="__Host-collab_login" if self.secure else "collab_login",
                max_age=oidc.LOGIN_TTL,
                same_site="lax",
                https_only=self.secure,
            )
        await self._inner(scope, receive, send)


def secure_public_url(settings: Settings) -> bool:
    return settings.public_url.startswith("https://")


def base_url(request: Request) -> str:
    settings: Settings = request.app.state.settings
    return (settings.public_url or str(request.base_url)).rstrip("/")


def _secure(request: Request) -> bool:
    settings: Settings = request.app.state.settings
    return secure_public_url(settings) or (
        not settings.public_url and request.url.scheme == "https"
    )


def _meta(request: Request) -> MetaStore:
    meta: MetaStore = request.app.state.meta
    return meta


def _client(request: Request) -> Any:
    state = request.app.state
    client = getattr(state, "oidc_client", None)
    if client is None:
        client = state.oidc_client = oidc.build_client(state.settings, state)
    return client


async def current_user(request: Request) -> tuple[Session, User] | None:
    """The live session of this browser and its user, or None (unknown, revoked, disabled)."""
    secret = read_session_secret(request.cookies)
    if secret is None:
        return None
    meta = _meta(request)
    session = await meta.get_session(secret)
    if session is None:
        return None
    user = await meta.get_user(session.user_id)
    if user is None or user.disabled:
        return None
    return session, user


async def _audit(request: Request, action: str, actor: str | None = None, **detail: Any) -> None:
    ip = request.client.host if request.client else None
    metrics = getattr(request.app.state, "metrics", None)
    if action == "login.failure" and metrics is not None:
        metrics.login_failed(detail.get("via"))
    try:
        await _meta(request).record(
            AuditEvent(at=time.time(), action=action, actor=actor, detail=detail, ip=ip)
        )
    except Exception:
        log.exception("could not record audit event %s", action)


def _safe_next(value: str | None) -> str | None:
    """A same-site path to return to after login; anything else (//evil, https://...) is dropped."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return None
    return value


def _close_session_sockets(request: Request, session_id: str) -> None:
    """A revoked session's open sockets close at once (4401), not at their next reconnect."""
    request.app.state.registry.close_matching(
        4401,
        "session revoked",
        lambda peer: peer.principal is not None and peer.principal.session_id == session_id,
    )


async def _start_session(request: Request, user: User, landing: str) -> tuple[Response, Session]:
    settings: Settings = request.app.state.settings
    meta = _meta(request)
    previous = await current_user(request)
    if previous is not None:  # a new login replaces this browser's old session
        await meta.revoke_session(previous[0].id)
        _close_session_sockets(request, previous[0].id)
    session, secret = await meta.create_session(user.id, settings.session_ttl)
    response = RedirectResponse(landing, status_code=303)
    set_session_cookie(response, secret, secure=_secure(request), max_age=int(settings.session_ttl))
    return response, session


# -- GET /login ----------------------------------------------------------------------------


async def login(request: Request) -> Response:
    state = request.app.state
    if not state.login_limiter.allow(client_address(request)):
        return json_error(429, "rate_limited", "too many login attempts; try again later")
    if devmode.is_dev_mode(state.settings):
        return await _dev_login(request)
    client = _client(request)
    try:
        await oidc.provider_metadata(client, state.settings)
    except LoginRefused as exc:
        return error_response(exc)
    landing = _safe_next(request.query_params.get("next"))
    request.session.pop(NEXT_KEY, None)
    if landing:
        request.session[NEXT_KEY] = landing
    redirect_uri = base_url(request) + "/auth/callback"
    response: Response = await client.authorize_redirect(request, redirect_uri)
    return response


async def _dev_login(request: Request) -> Response:
    token = request.query_params.get("token")
    if token is None:
        if await current_user(request) is not None:
            return RedirectResponse(base_url(request) + "/", status_code=303)
        return dev_refusal_page()
    if not devmode.is_dev_token(request.app.state, token):
        await _audit(request, "login.failure", via="dev", reason="wrong dev token")
        return dev_refusal_page("That login token is not this server's.")
    user = await devmode.ensure_dev_user(_meta(request))
    landing = base_url(request) + "/"
    response, session = await _start_session(request, user, landing)
    await _audit(request, "login.success", user.id, via="dev", session=session.id[:12])
    return response


# -- GET /auth/callback --------------------------------------------------------------------


async def callback(request: Request) -> Response:
    state = request.app.state
    if not state.login_limiter.allow(client_address(request)):
        return json_error(429, "rate_limited", "too many login attempts; try again later")
    settings: Settings = state.settings
    if devmode.is_dev_mode(settings):
        return json_error(404, "not_found", "no identity provider is configured (dev mode)")
    try:
        identity = await oidc.complete_login(_client(request), settings, request)
    except LoginRefused as exc:
        log.info("login refused: %s", exc.code)
        await _audit(request, "login.failure", via="oidc", reason=exc.code)
        return error_response(exc)
    meta = _meta(request)
    user = await meta.upsert_oidc_user(
        identity.issuer,
        identity.subject,
        name=identity.name,
        email=identity.email,
        email_verified=identity.email_verified,
        picture=identity.picture,
    )
    if user.disabled:
        await _audit(request, "login.failure", user.id, via="oidc", reason="user_disabled")
        return json_error(403, "user_disabled", "this account is disabled")
    landing = base_url(request) + (request.session.pop(NEXT_KEY, None) or "/")
    response, session = await _start_session(request, user, landing)
    await meta.cache_set(ID_TOKEN_KEY + session.id, identity.id_token, settings.session_ttl)
    await _audit(request, "login.success", user.id, via="oidc", session=session.id[:12])
    return response


# -- GET/POST /logout ----------------------------------------------------------------------


async def logout(request: Request) -> Response:
    state = request.app.state
    settings: Settings = state.settings
    meta = _meta(request)
    secret = read_session_secret(request.cookies)
    session = await meta.get_session(secret) if secret else None
    id_token: str | None = None
    if session is not None:
        id_token = await meta.cache_get(ID_TOKEN_KEY + session.id)
        await meta.cache_delete(ID_TOKEN_KEY + session.id)
        await meta.revoke_session(session.id)
        _close_session_sockets(request, session.id)
        await _audit(request, "logout", session.user_id, session=session.id[:12])
    request.session.clear()
    response: Response
    end_session = None
    if not devmode.is_dev_mode(settings):
        end_session = await oidc.logout_url(
            _client(request), settings, base_url(request) + "/", id_token
        )
    if end_session:
        response = RedirectResponse(end_session, status_code=303)
    elif devmode.is_dev_mode(settings):
        response = _page(
            "Signed out",
            "<p>You are signed out. Open the login URL printed by <code>collab serve</code> "
            "to sign in again.</p>",
            dev=True,
        )
    else:
        response = RedirectResponse(base_url(request) + "/", status_code=303)
    clear_session_cookie(response, secure=_secure(request))
    return response


# -- GET / and GET /auth/session -----------------------------------------------------------


async def home(request: Request) -> Response:
    """The landing page until the workspace (web/) takes over ``/``."""
    settings: Settings = request.app.state.settings
    dev = devmode.is_dev_mode(settings)
    current = await current_user(request)
    if current is None:
        if dev:
            return dev_refusal_page()
        return RedirectResponse(base_url(request) + "/login", status_code=303)
    _, user = current
    who = html.escape(user.name or user.email or user.id)
    email = f" &lt;{html.escape(user.email)}&gt;" if user.email else ""
    body = (
        f"<p>Signed in as <strong id='user-name'>{who}</strong>{email}.</p>"
        "<form method='post' action='logout'><button type='submit'>Log out</button></form>"
    )
    return _page("collab", body, dev=dev)


async def session_info(request: Request) -> Response:
    current = await current_user(request)
    if current is None:
        return json_error(401, "unauthorized", "not signed in")
    session, user = current
    return JSONResponse(
        {
            "user": {
                "id": user.id,
                "name": user.name,
                "email": user.email if user.email_verified else None,
                "picture": user.picture,
                "is_admin": is_admin(user, request.app.state.settings),
            },
            "expires_at": session.expires_at,
            "dev_mode": devmode.is_dev_mode(request.app.state.settings),
        }
    )


def dev_refusal_page(reason: str = "") -> HTMLResponse:
    extra = f"<p><strong>{html.escape(reason)}</strong></p>" if reason else ""
    body = (
        f"{extra}<p>No identity provider is configured, so this server only lets in whoever "
        "holds its login token. Open the login URL that <code>collab serve</code> printed in "
        "its terminal when it started (it ends in <code>/login?token=...</code>). Set "
        "<code>COLLAB_DEV_TOKEN</code> to keep the same token across restarts.</p>"
    )
    return _page("Login required", body, dev=True, status=401)


def _page(title: str, body: str, *, dev: bool, status: int = 200) -> HTMLResponse:
    banner = (
        "<p id='dev-mode' style='background:#fc0;padding:.5em;font-weight:bold'>"
        "DEV MODE: no identity provider configured; loopback only.</p>"
        if dev
        else ""
    )
    return HTMLResponse(
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"</head><body>{banner}<h1>{html.escape(title)}</h1>{body}</body></html>",
        status_code=status,
        headers={"Cache-Control": "no-store"},
    )
