"""Dev mode: no identity provider configured, so a printed token is the only way in.

Jupyter-style: ``collab serve`` binds loopback only, prints a login URL carrying a random token
(or ``COLLAB_DEV_TOKEN``), and whoever presents it (``/login?token=``, ``?token=`` on a socket)
is the dev user. Every check of that token goes through :func:`is_dev_token`.

A fixed ``COLLAB_DEV_TOKEN`` needs :data:`MIN_DEV_TOKEN_LENGTH` characters: it is all that
guards the server. Whatever the dev token let someone mint lives no longer than the token: when
a server starts with another dev token than the database last saw (a random one at each start,
or a new ``COLLAB_DEV_TOKEN``), the dev user's sessions and personal API tokens are revoked
(:func:`adopt_dev_token`), so changing a leaked token locks its holder out.
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
import time
from typing import Protocol

from collab.meta import AuditEvent, MetaStore, User, digest
from collab.meta.handles import DEV_ISSUER
from collab.settings import Settings

DEV_SUBJECT = "dev"
DEV_NAME = "Dev user"
MIN_DEV_TOKEN_LENGTH = 16
DEV_TOKEN_MARK = "collab:dev_token_digest"  # MetaStore cache key: the last dev token's digest
_MARK_TTL = 100 * 365 * 24 * 3600.0  # the cache's entries expire; this one effectively never


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
    """``COLLAB_DEV_TOKEN`` when set (and long enough), else a fresh random token."""
    check_dev_token(settings)
    return settings.dev_token or secrets.token_urlsafe(32)


def check_dev_token(settings: Settings) -> None:
    """Refuse a fixed dev token too short to guard the server (the token itself is never
    part of the message)."""
    if is_dev_mode(settings) and 0 < len(settings.dev_token) < MIN_DEV_TOKEN_LENGTH:
        raise DevModeError(
            f"COLLAB_DEV_TOKEN (--dev-token) has {len(settings.dev_token)} characters: it needs "
            f"at least {MIN_DEV_TOKEN_LENGTH}, or leave it unset for a random one"
        )


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
    """Refuse what dev mode cannot start with: a non-loopback bind (the token is all that
    guards the server), or a fixed dev token that is too short."""
    check_dev_token(settings)
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
    """The dev user's MetaStore row (issuer ``collab:dev``, subject ``dev``, handle ``dev``
    unless someone has it), created once."""
    return await meta.upsert_oidc_user(
        DEV_ISSUER,
        DEV_SUBJECT,
        name=DEV_NAME,
        email=None,
        email_verified=False,
        picture=None,
        preferred_handle="dev",
    )


MAX_DEV_NAME = 64
NAMED_SUBJECT = "name:"  # a named dev user's subject: this prefix and the casefolded name


def dev_display_name(raw: str) -> str | None:
    """A named dev user's display name (trimmed), or None when it is not a usable one."""
    name = " ".join(raw.split())
    if not 0 < len(name) <= MAX_DEV_NAME or not name.isprintable():
        return None
    return name


async def ensure_named_dev_user(meta: MetaStore, name: str) -> User:
    """A distinct dev user per display name (case-insensitive), for trying collaboration in
    two windows. An ordinary user: only memberships give it rights (unlike the dev token)."""
    return await meta.upsert_oidc_user(
        DEV_ISSUER,
        NAMED_SUBJECT + name.casefold(),
        name=name,
        email=None,
        email_verified=False,
        picture=None,
    )


async def adopt_dev_token(meta: MetaStore, dev_user_id: str, token: str) -> bool:
    """Remember ``token`` as the dev token; if the database last saw another, revoke what the
    old one minted (the dev user's sessions and personal API tokens), audited. True if so.

    Only a digest of the token is stored. Room tokens the dev user minted are signed, not
    stored: they last until they expire (at most ``token_max_ttl``).
    """
    mark = digest(token)
    previous = await meta.cache_get(DEV_TOKEN_MARK)
    await meta.cache_set(DEV_TOKEN_MARK, mark, _MARK_TTL)
    if previous is None or hmac.compare_digest(previous, mark):
        return False
    sessions = await meta.revoke_user_sessions(dev_user_id)
    tokens = [t for t in await meta.list_api_tokens(dev_user_id) if not t.revoked]
    for api_token in tokens:
        await meta.revoke_api_token(api_token.id, dev_user_id)
    await meta.record(
        AuditEvent(
            at=time.time(),
            action="dev_token.changed",
            target=dev_user_id,
            detail={"sessions_revoked": len(sessions), "api_tokens_revoked": len(tokens)},
        )
    )
    return True
