"""The session cookie: a random secret whose digest is a row in the MetaStore.

HttpOnly, SameSite=Lax, ``__Host-`` prefixed (and Secure) over https. No token or user data
lives in the cookie, so logout, removal and bans revoke it at once server-side.
"""

from __future__ import annotations

from collections.abc import Mapping

from starlette.responses import Response

COOKIE = "collab_session"
SECURE_COOKIE = "__Host-collab_session"


def cookie_name(secure: bool) -> str:
    return SECURE_COOKIE if secure else COOKIE


def set_session_cookie(response: Response, secret: str, *, secure: bool, max_age: int) -> None:
    response.set_cookie(
        cookie_name(secure),
        secret,
        max_age=max_age,
        path="/",
        secure=secure,
        httponly=True,
        samesite="lax",
    )


def clear_session_cookie(response: Response, *, secure: bool) -> None:
    response.delete_cookie(
        cookie_name(secure), path="/", secure=secure, httponly=True, samesite="lax"
    )


def read_session_secret(cookies: Mapping[str, str]) -> str | None:
    return cookies.get(SECURE_COOKIE) or cookies.get(COOKIE) or None
