"""OpenID Connect login through Authlib's Starlette client, with its state in the MetaStore.

Authlib keeps each login's state, nonce, PKCE verifier and redirect URI in a cache
(:class:`MetaStoreCache`, the MetaStore's ``cache_*``); the browser's signed SessionMiddleware
cookie only carries a marker naming the state, which is what binds the callback to the browser
that started the login (login CSRF). On top of Authlib, :func:`complete_login` checks what it
does not: the authorization response's ``iss`` (RFC 9207), the ID token's audience, a token
response without an ID token, the discovery document's issuer, and userinfo's ``sub``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import httpx2
from authlib.integrations.base_client.errors import MismatchingStateError, OAuthError
from authlib.integrations.starlette_client import OAuth
from joserfc.errors import JoseError
from starlette.requests import Request

from collab.errors import LoginRefused
from collab.meta import MetaStore
from collab.settings import Settings

log = logging.getLogger("collab.auth.oidc")

CLIENT_NAME = "oidc"
CACHE_PREFIX = "authlib:"
SCOPE = "openid email profile"
LOGIN_TTL = 600  # seconds between /login and its callback


class MetaStoreCache:
    """Authlib's cache interface (async ``get``/``set``/``delete``) over the MetaStore's cache.

    The MetaStore may be opened after the client is built: it is only used once a login runs.
    """

    def __init__(self, meta: MetaStore) -> None:
        self._meta = meta

    async def get(self, key: str) -> str | None:
        return await self._meta.cache_get(CACHE_PREFIX + key)

    async def set(self, key: str, value: str, expires_in: float | None = None) -> None:
        await self._meta.cache_set(CACHE_PREFIX + key, value, expires_in or LOGIN_TTL)

    async def delete(self, key: str) -> None:
        await self._meta.cache_delete(CACHE_PREFIX + key)


@dataclass(frozen=True)
class Identity:
    """Who the provider says logged in: the user's key and profile, plus the raw ID token
    (kept server-side only, as ``id_token_hint`` for RP-initiated logout)."""

    issuer: str
    subject: str
    name: str
    email: str | None
    email_verified: bool
    picture: str | None
    id_token: str
    preferred_username: str | None = None  # the base of a new user's handle


def build_client(settings: Settings, meta: MetaStore) -> Any:
    """The Authlib Starlette client for the configured provider (discovery, PKCE S256)."""
    # Authlib logs the PKCE verifier at DEBUG: keep secrets out of logs at every level.
    logging.getLogger("authlib").setLevel(max(logging.INFO, logging.getLogger().level))
    oauth = OAuth(cache=MetaStoreCache(meta))
    issuer = settings.oidc_issuer.rstrip("/")
    oauth.register(
        CLIENT_NAME,
        client_id=settings.oidc_client_id,
        client_secret=settings.oidc_client_secret,
        server_metadata_url=issuer + "/.well-known/openid-configuration",
        client_kwargs={"scope": SCOPE, "code_challenge_method": "S256", "timeout": 10.0},
    )
    client = oauth.create_client(CLIENT_NAME)
    client.framework.expires_in = LOGIN_TTL
    return client


async def provider_metadata(client: Any, settings: Settings) -> dict[str, Any]:
    """The discovery document, whose issuer must be the configured one (OIDC Discovery §4.3)."""
    try:
        metadata: dict[str, Any] = await client.load_server_metadata()
    except (httpx2.HTTPError, ValueError) as exc:
        log.warning("identity provider discovery failed: %s", type(exc).__name__)
        raise LoginRefused(
            "provider_unavailable", "the identity provider cannot be reached", 502
        ) from exc
    if str(metadata.get("issuer", "")).rstrip("/") != settings.oidc_issuer.rstrip("/"):
        raise LoginRefused(
            "provider_misconfigured", "the provider's issuer is not the configured one", 502
        )
    return metadata


async def complete_login(client: Any, settings: Settings, request: Request) -> Identity:
    """Turn an authorization response into a verified Identity, or raise LoginRefused.

    The login's stored state is consumed on every path, so a callback URL works at most once.
    """
    params = request.query_params
    state = params.get("state")
    if not state:
        raise LoginRefused("invalid_state", "the callback carries no state")
    metadata = await provider_metadata(client, settings)
    try:
        _check_response_issuer(params.get("iss"), metadata)
        if params.get("error"):
            raise LoginRefused(
                "provider_error", f"the identity provider refused: {params['error'][:64]}"
            )
    except LoginRefused:
        # Never redeem a code from a mixed-up or failed response; forget its login too.
        await client.framework.clear_state_data(request.session, state)
        raise
    try:
        token = await client.authorize_access_token(
            request, claims_options=_claims_options(settings, metadata)
        )
    except MismatchingStateError as exc:
        raise LoginRefused(
            "invalid_state", "unknown, used or expired login state (start again at /login)"
        ) from exc
    except OAuthError as exc:
        raise LoginRefused("token_refused", f"the code was refused: {exc.error}") from exc
    except JoseError as exc:
        raise LoginRefused("invalid_id_token", f"ID token rejected: {exc.error}") from exc
    except httpx2.HTTPError as exc:
        raise LoginRefused(
            "provider_unavailable", "the identity provider cannot be reached", 502
        ) from exc
    if not token.get("id_token") or not token.get("userinfo"):
        raise LoginRefused("missing_id_token", "the token response carries no ID token")
    return await _identity(client, token)


def _check_response_issuer(iss: str | None, metadata: dict[str, Any]) -> None:
    """RFC 9207: a provider that announces ``iss`` must send it, and it must be its own."""
    if iss is None:
        if metadata.get("authorization_response_iss_parameter_supported"):
            raise LoginRefused("issuer_mismatch", "the authorization response has no iss")
        return
    if iss != metadata["issuer"]:
        raise LoginRefused("issuer_mismatch", "the authorization response names another issuer")


def _claims_options(settings: Settings, metadata: dict[str, Any]) -> dict[str, Any]:
    # Authlib checks iss (from metadata) and the nonce, but not the audience unless asked.
    return {
        "iss": {"essential": True, "value": metadata["issuer"]},
        "aud": {"essential": True, "value": settings.oidc_client_id},
        "sub": {"essential": True},
        "exp": {"essential": True},
        "iat": {"essential": True},
    }


async def _identity(client: Any, token: dict[str, Any]) -> Identity:
    claims: dict[str, Any] = dict(token["userinfo"])
    profile: dict[str, Any] = {}
    try:
        profile = dict(await client.userinfo(token=token))
    except (httpx2.HTTPError, OAuthError, KeyError, ValueError) as exc:
        # Many providers put only sub in the ID token; without userinfo the profile is empty.
        log.warning("userinfo request failed: %s", type(exc).__name__)
    if profile and profile.get("sub") != claims["sub"]:
        raise LoginRefused("invalid_userinfo", "userinfo names another subject")
    merged = {**claims, **{k: v for k, v in profile.items() if v not in (None, "")}}
    email = merged.get("email") if isinstance(merged.get("email"), str) else None
    return Identity(
        issuer=str(claims["iss"]),
        subject=str(claims["sub"]),
        name=str(merged.get("name") or merged.get("preferred_username") or email or ""),
        email=email,
        email_verified=email is not None and merged.get("email_verified") is True,
        picture=merged.get("picture") if isinstance(merged.get("picture"), str) else None,
        id_token=str(token["id_token"]),
        preferred_username=_text(merged.get("preferred_username")),
    )


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


async def logout_url(
    client: Any, settings: Settings, post_logout_redirect_uri: str, id_token: str | None
) -> str | None:
    """The provider's end-session URL (RP-initiated logout), or None when it has none."""
    try:
        metadata = await client.load_server_metadata()
    except (httpx2.HTTPError, ValueError):
        return None
    if not metadata.get("end_session_endpoint"):
        return None
    result = await client.create_logout_url(
        post_logout_redirect_uri=post_logout_redirect_uri,
        id_token_hint=id_token,
        client_id=settings.oidc_client_id,
    )
    return str(result["url"])
