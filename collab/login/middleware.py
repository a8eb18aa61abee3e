"""``LoginSessionMiddleware``: the signed cookie that carries Authlib's per-login marker.

Pure ASGI, HTTP only. It wraps Starlette's SessionMiddleware, whose signing key is the first of
the app's secret keys: those are loaded when the app starts, so the inner middleware is built on
the first request. A key rotation only invalidates logins in flight (the cookie lives
``oidc.LOGIN_TTL`` seconds).
"""

from __future__ import annotations

from starlette.middleware.sessions import SessionMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from collab.auth import oidc
from collab.services import Services
from collab.settings import Settings


def secure_public_url(settings: Settings) -> bool:
    return settings.public_url.startswith("https://")


class LoginSessionMiddleware:
    def __init__(self, app: ASGIApp, services: Services) -> None:
        self.app = app
        self.services = services
        self.secure = secure_public_url(services.settings)
        self._inner: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self._inner is None:
            self._inner = SessionMiddleware(
                self.app,
                secret_key=self.services.secret_keys[0],
                session_cookie="__Host-collab_login" if self.secure else "collab_login",
                max_age=oidc.LOGIN_TTL,
                same_site="lax",
                https_only=self.secure,
            )
        await self._inner(scope, receive, send)
