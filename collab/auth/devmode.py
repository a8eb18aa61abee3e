"""Dev mode: no identity provider configured, so a printed token is the only way in.

Jupyter-style: ``collab serve`` binds loopback only, prints a login URL carrying a random token
(or ``COLLAB_DEV_TOKEN``), and whoever presents it (``/login?token=``, ``?token=`` on a socket)
is the dev user. Every check of that token goes through :func:`is_dev_token`.
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
from typing import Protocol

from collab.meta import MetaStore, User
from collab.settings import Settings

DEV_ISSUER = "collab:dev"
DEV_SUBJECT = "dev"
DEV_NAME = "Dev user"


class DevModeError(Exception):
    """Dev mode cannot start as configured (a non-loopback bind): a startup error, never a
    client's, so it stays outside ``collab.errors``' tree."""


class DevTokenHolder(Protocol):
    """What knows this process's dev token: the app's Services (or any look-alike)."""

    @property
    def dev_token(self) -> str: ...
    @property
    def settings(self) -> Settings: ...


def is_dev_mode(settings: Settings) -> bool:
    return not settings.oidc_issuer.strip()


def resolve_dev_token(settings: Settings) -> str:
    """``COLLAB_DEV_TOKEN`` when set, else a fresh random token for this process."""
    return settings.dev_token or secrets.token_urlsafe(32)


def is_dev_token(source: DevTokenHolder | Settings, token: str | None) -> bool:
    """Whether ``token`` is the dev token, in constant time.

    ``source`` is the app's Services (``dev_token`` holds this process's token, random or
    fixed) or a Settings (only a fixed ``COLLAB_DEV_TOKEN`` then). Always False once
    an identity provider is configured.
    """
    expected = source.dev_token or ""
    settings = source if isinstance(source, Settings) else source.settings
    if not is_dev_mode(settings):
        return False
    if not expected or not token:
        return False
    return hmac.compare_digest(token.encode("utf-8"), expected.encode("utf-8"))


def is_loopback_host(host: str) -> bool:
    host = host.strip().strip("[]")
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_dev_bind(settings: Settings) -> None:
    """Refuse a non-loopback bind in dev mode: the token is all that guards the server."""
    if is_dev_mode(settings) and not is_loopback_host(settings.host):
        raise DevModeError(
            f"refusing to bind {settings.host!r} in dev mode: without an identity provider "
            "collab only listens on loopback (127.0.0.1, ::1, localhost). Configure "
            "COLLAB_OIDC_ISSUER, COLLAB_OIDC_CLIENT_ID and COLLAB_OIDC_CLIENT_SECRET to "
            "serve other hosts, or bind 127.0.0.1 and put a reverse proxy in front."
        )


def login_url(base_url: str, token: str) -> str:
    return f"{base_url.rstrip('/')}/login?token={token}"


async def ensure_dev_user(meta: MetaStore) -> User:
    """The dev user's MetaStore row (issuer ``collab:dev``, subject ``dev``), created once."""
    return await meta.upsert_oidc_user(
        DEV_ISSUER, DEV_SUBJECT, name=DEV_NAME, email=None, email_verified=False, picture=None
    )
