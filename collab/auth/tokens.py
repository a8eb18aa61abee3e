"""Room tokens: signed JWTs (joserfc, HS256) for non-browser clients and embedding apps.

A room token names a user, one room, a doc pattern and a role ceiling, and expires; anyone
holding it connects as that user with at most that role (still never more than the user's own
role in the room, checked at every connect). Keys come from the secret key list: the first
signs, every key verifies (rotation); the ``kid`` header says which one signed.

Every token carries a ``jti`` (its id): owners revoke one by it (``DELETE
/api/v1/rooms/{room}/tokens/{jti}``). A token is valid while ``now < exp`` and, the server's
``token_max_ttl`` given, before the latest ``exp`` a token minted then under that setting could
have (``iat`` is the second it was minted in: ``token_exp(iat + 1, max_ttl)``): a token minted
under a longer ``token_max_ttl`` ends when the current setting says. A revocation is kept for
the longest ``token_max_ttl`` ever in force on the store (a high-water mark every server raises
when it starts: ``collab.meta.room_tokens``), not the current setting, so it outlives every
token it can name even when the setting is lowered and raised again, or differs between nodes.
The socket a token opened is closed at its end (``collab.sync.expiry``), with a code
y-websocket retries.
"""

from __future__ import annotations

import hashlib
import math
import time
import uuid
from dataclasses import dataclass

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import OctKey

from collab.errors import Unauthorized
from collab.meta import Role

ISSUER = "collab"
AUDIENCE = "collab:room"
BOT_ISSUER = "collab:bot"  # the `issuer` of users made by `collab user create-bot`


@dataclass(frozen=True)
class RoomTokenClaims:
    user_id: str
    room_id: str
    doc_pattern: str
    role: Role
    expires_at: float
    token_id: str


def _kid(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:12]


def new_token_id() -> str:
    """A fresh ``jti``: 32 hex digits (128 random bits)."""
    return uuid.uuid4().hex


def is_token_id(value: str) -> bool:
    """Whether ``value`` has the shape of a ``jti`` this server mints."""
    return len(value) == 32 and all(c in "0123456789abcdef" for c in value)


def looks_like_jwt(token: str) -> bool:
    return token.count(".") == 2 and token.startswith("eyJ")


def token_exp(now: float, ttl: float) -> int:
    """The ``exp`` of a token minted at ``now`` to live ``ttl``: at most a second past it."""
    return math.ceil(now + ttl)


def mint_room_token(
    keys: list[str],
    *,
    user_id: str,
    room_id: str,
    role: Role,
    ttl: float,
    doc_pattern: str = "*",
    now: float | None = None,
    jti: str | None = None,
) -> str:
    """A signed room token; ``jti`` names it (a fresh id unless the caller chose one).

    ``exp`` is whole seconds rounded up (``token_exp``), so the token lives at least ``ttl``:
    rounded down, a one-second token minted late in a second lived a fraction of it."""
    now = time.time() if now is None else now
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": user_id,
        "room": room_id,
        "docs": doc_pattern,
        "role": role.name,
        "iat": int(now),
        "exp": token_exp(now, ttl),
        "jti": jti or new_token_id(),
    }
    key = keys[0]
    return jwt.encode({"alg": "HS256", "kid": _kid(key)}, claims, OctKey.import_key(key))


def verify_room_token(
    keys: list[str], token: str, now: float | None = None, *, max_ttl: float | None = None
) -> RoomTokenClaims:
    """The claims of a valid token; Unauthorized for a forged, expired or malformed one.

    Valid while ``now < exp`` (joserfc alone accepts the whole second of ``exp``): the same
    instant the timer of a socket opened with it closes that socket. With ``max_ttl`` (the
    server's ``token_max_ttl``) it also ends at the latest ``exp`` a token minted with that
    lifetime within the second of its ``iat`` could have, ``token_exp(iat + 1, max_ttl)``
    (``expires_at`` is the earlier of the two; ``iat`` is rounded down, ``exp`` up, so a
    bound of ``iat + max_ttl`` cut a token minted with the whole ``max_ttl`` before its
    ``exp``), and a token without ``iat`` is refused.
    """
    by_kid = {_kid(k): k for k in keys}
    now = time.time() if now is None else now
    try:
        header = jwt.decode(
            token, lambda obj: OctKey.import_key(by_kid[obj.headers()["kid"]]), algorithms=["HS256"]
        )
        claims = header.claims
        registry = jwt.JWTClaimsRegistry(
            now=int(now),
            iss={"essential": True, "value": ISSUER},
            aud={"essential": True, "value": AUDIENCE},
            exp={"essential": True},
            sub={"essential": True},
            jti={"essential": True},
        )
        registry.validate(claims)
        ends = float(claims["exp"])
        if max_ttl is not None:
            ends = min(ends, token_exp(float(claims["iat"]) + 1, max_ttl))  # no iat: KeyError
        if not ends > now:
            raise ValueError("expired")
        return RoomTokenClaims(
            user_id=str(claims["sub"]),
            room_id=str(claims["room"]),
            doc_pattern=str(claims.get("docs", "*")),
            role=Role.parse(str(claims["role"])),
            expires_at=ends,
            token_id=str(claims["jti"]),
        )
    except (JoseError, KeyError, ValueError, TypeError) as exc:
        raise Unauthorized("invalid or expired token") from exc
