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


def secure_site(public_url: str, scheme: str) -> bool:
    """Whether the session cookie is the Secure, ``__Host-`` one: an https public URL, or
    without one, a request that came over https (or wss)."""
    return public_url.startswith("https://") or (not public_url and scheme in ("https", "wss"))


def read_session_secret(cookies: Mapping[str, str], *, secure: bool) -> str | None:
    """The secret of the one cookie this site sets: over https only the ``__Host-`` one (a
    sibling subdomain, or a forged answer over plain http, can plant the unprefixed cookie,
    never the prefixed one: taking it would sign a browser in as whoever planted it)."""
    return cookies.get(cookie_name(secure)) or None
