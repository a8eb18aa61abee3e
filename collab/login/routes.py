"""Login, callback, logout and the signed-in landing page (OIDC, or dev mode's token).

``GET /login`` starts an OIDC login (or, in dev mode, trades ``?token=`` for a session);
``GET /auth/callback`` finishes it; ``GET /logout`` only asks to confirm, and ``POST /logout``
(its Origin checked like every cookie-authenticated change) revokes the server-side session,
tells the browser to clear what this site stored (``Clear-Site-Data``: the workspace's cached
answers, its outbox of unsent messages, the offline shell) and, where the provider offers it,
logs out there too (RP-initiated logout). ``GET /auth/session``
tells a front end who is signed in. Refusals of a callback are JSON errors (``LoginRefused``);
every login, failed login and logout is audited. Nothing here logs a token, code or cookie.
"""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from collab.auth import devmode, oidc
from collab.auth.admins import is_admin
from collab.auth.origin import origin_allowed
from collab.auth.sessions import clear_session_cookie, read_session_secret
from collab.errors import LoginRefused, error_response, json_error, retry_after_header
from collab.login import pages
from collab.login.session import (
    audit,
    base_url,
    close_session_sockets,
    current_user,
    is_secure,
    start_session,
)
from collab.ratelimit import client_address
from collab.services import services

log = logging.getLogger("collab.login")

ID_TOKEN_KEY = "id_token:"  # MetaStore cache key prefix: the ID token kept for logout
NEXT_KEY = "collab_next"  # where to land after login, in the signed login cookie
_TOO_MANY = (429, "rate_limited", "too many login attempts; try again later")
# What a logout wipes in the browser (secure contexts: https, or loopback): the workspace keeps
# who I am, my rooms and my unsent messages (localStorage, IndexedDB) and an offline shell that
# opens them without the server, so the next person of this browser profile would see them.
CLEAR_SITE_DATA = '"storage"'


def login_routes() -> list[BaseRoute]:
    return [
        Route("/login", login, methods=["GET"], name="login"),
        Route("/auth/callback", callback, methods=["GET"], name="auth_callback"),
        Route("/auth/session", session_info, methods=["GET"], name="auth_session"),
        Route("/logout", logout_page, methods=["GET"], name="logout_page"),
        Route("/logout", logout, methods=["POST"], name="logout"),
    ]


def _safe_next(value: str | None) -> str | None:
    """A same-site path to return to after login; anything else (//evil, https://...) is dropped."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return None
    return value


async def login(request: Request) -> Response:
    """GET /login: dev mode's token for a session, or a redirect to the identity provider."""
    shared = services(request)
    wait = await shared.login_limiter.take(client_address(request))
    if wait > 0:
        return json_error(*_TOO_MANY, headers={"Retry-After": retry_after_header(wait)})
    if shared.dev_mode:
        return await _dev_login(request)
    client = shared.oidc()
    try:
        await oidc.provider_metadata(client, shared.settings)
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
        return pages.dev_refusal_page()
    shared = services(request)
    if not devmode.is_dev_token(shared, token):
        await audit(request, "login.failure", via="dev", reason="wrong dev token")
        return pages.dev_refusal_page("That login token is not this server's.")
    raw_name = request.query_params.get("name", "").strip()
    if raw_name:
        # Named dev users are for trying collaboration on this machine: loopback only (behind
        # a trusted proxy, the client's real address decides).
        name = devmode.dev_display_name(raw_name)
        if not devmode.is_loopback_host(client_address(request)):
            return pages.dev_refusal_page("Named dev users can sign in from this machine only.")
        if name is None:
            reason = f"A display name has 1 to {devmode.MAX_DEV_NAME} printable characters."
            return pages.dev_refusal_page(reason)
        user = await devmode.ensure_named_dev_user(shared.meta, name)
    else:
        user = await devmode.ensure_dev_user(shared.meta)
    response, session = await start_session(request, user, base_url(request) + "/")
    await audit(request, "login.success", user.id, via="dev", session=session.id[:12])
    return response


async def callback(request: Request) -> Response:
    """GET /auth/callback: verify the provider's answer, then sign the user in."""
    shared = services(request)
    wait = await shared.login_limiter.take(client_address(request))
    if wait > 0:
        return json_error(*_TOO_MANY, headers={"Retry-After": retry_after_header(wait)})
    if shared.dev_mode:
        return json_error(404, "not_found", "no identity provider is configured (dev mode)")
    try:
        identity = await oidc.complete_login(shared.oidc(), shared.settings, request)
    except LoginRefused as exc:
        log.info("login refused: %s", exc.code)
        await audit(request, "login.failure", via="oidc", reason=exc.code)
        return error_response(exc)
    user = await shared.meta.upsert_oidc_user(
        identity.issuer,
        identity.subject,
        name=identity.name,
        email=identity.email,
        email_verified=identity.email_verified,
        picture=identity.picture,
        preferred_handle=identity.preferred_username,
    )
    if user.disabled:
        await audit(request, "login.failure", user.id, via="oidc", reason="user_disabled")
        return json_error(403, "user_disabled", "this account is disabled")
    landing = base_url(request) + (request.session.pop(NEXT_KEY, None) or "/")
    response, session = await start_session(request, user, landing)
    ttl = shared.settings.session_ttl
    await shared.meta.cache_set(ID_TOKEN_KEY + session.id, identity.id_token, ttl)
    await audit(request, "login.success", user.id, via="oidc", session=session.id[:12])
    return response


async def logout_page(request: Request) -> Response:
    """GET /logout: a confirmation page; nothing changes (a cross-site link cannot log out)."""
    dev = services(request).dev_mode
    current = await current_user(request)
    if current is None:
        return pages.signed_out_page(dev=dev)
    return pages.logout_confirm_page(current[1], dev=dev)


async def logout(request: Request) -> Response:
    """POST /logout: revoke the session, close its sockets, clear the site's data in the
    browser, log out at the provider.

    Only from this site's own pages: a POST without an allowed Origin changes nothing (403).
    """
    shared = services(request)
    if not origin_allowed(request, shared.settings):
        log.info("refused a logout from origin %r", request.headers.get("origin", "")[:200])
        return pages.logout_refused_page()
    meta = shared.meta
    secret = read_session_secret(request.cookies, secure=is_secure(request))
    session = await meta.get_session(secret) if secret else None
    id_token: str | None = None
    if session is not None:
        id_token = await meta.cache_get(ID_TOKEN_KEY + session.id)
        await meta.cache_delete(ID_TOKEN_KEY + session.id)
        await meta.revoke_session(session.id)
        close_session_sockets(request, session.id, session.user_id)
        await audit(request, "logout", session.user_id, session=session.id[:12])
    request.session.clear()
    response: Response
    end_session = None
    if not shared.dev_mode:
        landing = base_url(request) + "/"
        end_session = await oidc.logout_url(shared.oidc(), shared.settings, landing, id_token)
    if end_session:
        response = RedirectResponse(end_session, status_code=303)
    elif shared.dev_mode:
        response = pages.dev_signed_out_page()
    else:
        response = RedirectResponse(base_url(request) + "/", status_code=303)
    clear_session_cookie(response, secure=is_secure(request))
    response.headers["Clear-Site-Data"] = CLEAR_SITE_DATA
    return response


async def session_info(request: Request) -> Response:
    """GET /auth/session: who is signed in on this browser (401 when nobody)."""
    current = await current_user(request)
    if current is None:
        return json_error(401, "unauthorized", "not signed in")
    session, user = current
    settings = services(request).settings
    return JSONResponse(
        {
            "user": {
                "id": user.id,
                "name": user.name,
                "handle": user.handle,
                "email": user.email if user.email_verified else None,
                "picture": user.picture,
                "is_admin": is_admin(user, settings),
            },
            "expires_at": session.expires_at,
            "dev_mode": devmode.is_dev_mode(settings),
        }
    )
