"""Room tokens, single-use tickets, and personal API tokens.

- Room token (``POST /rooms/{room}/tokens``): a signed JWT naming user, room, doc pattern, role
  ceiling and expiry, and its id (``jti``, answered as ``id`` and kept in the audit log).
  Any member mints one for themself, role <= their own, lifetime <= ``token_max_ttl``; owners
  may also mint for the room's bots (users created as bots); none for a direct message (409:
  a DM is its two users' own). Owners revoke any token of their
  room by its id (``DELETE /rooms/{room}/tokens/{id}``): its sockets close 4401 and it is
  refused from then on.
- Ticket (``POST /rooms/{room}/tickets``): single use, valid for seconds, for browsers that
  cannot send the cookie on a socket. It bounds the handshake only: the socket lives on the
  session or personal API token that minted the ticket (its expiry, its revocation).
- Personal API token (``/tokens``): for the user's scripts; shown once, stored as a digest,
  listed, revocable (revoking closes the sockets it opened, 4401).
"""

from __future__ import annotations

import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from collab.api import access, parsing
from collab.api.handler import api_endpoint
from collab.auth.tokens import (
    BOT_ISSUER,
    is_token_id,
    mint_room_token,
    new_token_id,
    token_exp,
)
from collab.errors import BadName, BadRequest, Forbidden, NotFound
from collab.meta import ApiToken, Role
from collab.names import is_valid_doc_name
from collab.services import services

TICKET_TTL = 30.0
# A DM is its two users' own: a token would let a program act there for one of them without
# their personal credential. Tickets (a browser's socket) are fine.
NO_DM_TOKENS = "room tokens are not issued for direct messages"
MAX_TOKEN_NAME = 100
_PATTERN_CHARS = set("*?[]!")


def _doc_pattern(body: dict[str, Any]) -> str:
    pattern = parsing.get_field(body, "docs", str, "*")
    assert pattern is not None
    literal = "".join("a" if c in _PATTERN_CHARS else c for c in pattern)
    if len(pattern) > 128 or not (pattern == "*" or is_valid_doc_name(literal)):
        raise BadRequest("'docs' must be a doc name or an fnmatch pattern of one")
    return pattern


@api_endpoint
async def mint_token(request: Request) -> Response:
    """Mint a room token: for oneself (role <= one's own), or for a room's bot (owner)."""
    principal = await access.require_principal(request, personal=True)
    room_id = parsing.room_param(request)
    own = await access.require_role_outside_dm(
        request, principal, room_id, Role.viewer, NO_DM_TOKENS
    )
    body = await parsing.read_json(request)
    shared = services(request)
    meta, settings = shared.meta, shared.settings
    user_id = parsing.get_field(body, "user_id", str) or principal.user_id
    ceiling = own
    if user_id != principal.user_id:
        if own < Role.owner:
            raise Forbidden("only owners mint tokens for others")
        user = await meta.get_user(user_id)
        member = await meta.get_member(room_id, user_id)
        if user is None or member is None:
            raise NotFound("no such member")
        if user.issuer != BOT_ISSUER:
            raise Forbidden("owners mint tokens for the room's bots only")
        ceiling = member.role
    role = parsing.role_field(body, default=ceiling)
    if role > ceiling:
        raise Forbidden(f"a token cannot grant more than {ceiling.name}")
    ttl = parsing.get_field(body, "ttl", float, settings.token_max_ttl)
    assert ttl is not None
    if not 1 <= ttl <= settings.token_max_ttl:
        raise BadRequest(f"'ttl' must be between 1 and {int(settings.token_max_ttl)} seconds")
    pattern = _doc_pattern(body)
    now = time.time()
    jti = new_token_id()
    token = mint_room_token(
        shared.secret_keys,
        user_id=user_id,
        room_id=room_id,
        role=role,
        ttl=ttl,
        doc_pattern=pattern,
        now=now,
        jti=jti,
    )
    # The id is what an owner revokes the token by; the token itself is never recorded.
    detail: dict[str, Any] = {"role": role.name, "ttl": ttl, "docs": pattern, "id": jti}
    await access.audit(request, principal, "token.mint", room_id=room_id, target=user_id, **detail)
    return JSONResponse(
        {
            "id": jti,
            "token": token,
            "user_id": user_id,
            "room": room_id,
            "docs": pattern,
            "role": role.name,
            "expires_at": float(token_exp(now, ttl)),  # the token's own exp (whole seconds)
        },
        status_code=201,
    )


@api_endpoint
async def revoke_room_token(request: Request) -> Response:
    """Revoke a room token by its id (owners): its sockets close 4401, it is refused after."""
    principal = await access.require_principal(request, personal=True)
    room_id = parsing.room_param(request)
    await access.require_role(request, principal, room_id, Role.owner)
    jti = str(request.path_params["token_id"])
    if not is_token_id(jti):
        raise NotFound("no such token")
    shared = services(request)
    # Tokens are not stored, so any well-formed id is accepted (idempotent, reveals nothing);
    # the revocation is kept as long as any token could still live: the longest lifetime
    # ever in force on this store, on any node (collab.meta.room_tokens), not this setting.
    lifetime = max(shared.settings.token_max_ttl, await shared.meta.token_ttl_mark())
    until = time.time() + lifetime + 1  # + 1: a token's exp is rounded up (token_exp)
    await shared.meta.revoke_room_token(room_id, jti, principal.user_id, until)
    closed = shared.registry.revoke(
        4401,
        "token revoked",
        lambda peer: (
            peer.principal is not None
            and peer.principal.jti == jti
            and peer.principal.room_scope == room_id
        ),
        user="",  # other nodes recheck the room's tokens
        room=room_id,
    )
    await access.audit(
        request, principal, "room_token.revoke", room_id=room_id, target=jti, sockets=closed
    )
    return Response(status_code=204)


@api_endpoint
async def create_ticket(request: Request) -> Response:
    """A single-use socket ticket for the caller, valid for seconds."""
    principal = await access.require_principal(request, personal=True)
    room_id = parsing.room_param(request)
    own = await access.require_role(request, principal, room_id, Role.viewer)
    body = await parsing.read_json(request)
    doc = parsing.get_field(body, "doc", str)
    if doc is not None and not is_valid_doc_name(doc):
        raise BadName("bad document name")
    role = parsing.role_field(body, default=own)
    if role > own:
        raise Forbidden(f"a ticket cannot grant more than {own.name}")
    # The socket this ticket opens lives on the caller's own credential (none: the dev token).
    ticket = await services(request).meta.create_ticket(
        principal.user_id,
        room_id,
        doc,
        role,
        TICKET_TTL,
        session_id=principal.session_id,
        api_token_id=principal.token_id,
    )
    return JSONResponse(
        {
            "ticket": ticket,
            "room": room_id,
            "doc": doc,
            "role": role.name,
            "expires_in": TICKET_TTL,
        },
        status_code=201,
    )


def api_token_json(token: ApiToken) -> dict[str, Any]:
    return {
        "id": token.id,
        "name": token.name,
        "created_at": token.created_at,
        "last_used_at": token.last_used_at,
        "revoked": token.revoked,
    }


@api_endpoint
async def list_api_tokens(request: Request) -> Response:
    """The caller's personal API tokens (never their secrets)."""
    principal = await access.require_principal(request, personal=True)
    tokens = await services(request).meta.list_api_tokens(principal.user_id)
    page, cursor = parsing.paginate(request, tokens, lambda t: [t.created_at, t.id])
    return parsing.page_response([api_token_json(t) for t in page], cursor)


@api_endpoint
async def create_api_token(request: Request) -> Response:
    """Create a personal API token; the secret is in this response only."""
    principal = await access.require_principal(request, personal=True)
    name = parsing.get_field(await parsing.read_json(request), "name", str, "api token")
    assert name is not None
    if not name.strip() or len(name) > MAX_TOKEN_NAME:
        raise BadRequest(f"'name' must be 1 to {MAX_TOKEN_NAME} characters")
    token, secret = await services(request).meta.create_api_token(principal.user_id, name.strip())
    await access.audit(request, principal, "token.create", target=token.id, name=token.name)
    return JSONResponse({**api_token_json(token), "token": secret}, status_code=201)


@api_endpoint
async def revoke_api_token(request: Request) -> Response:
    """Revoke one of the caller's API tokens; sockets opened with it close 4401."""
    principal = await access.require_principal(request, personal=True)
    token_id = str(request.path_params["token_id"])
    meta = services(request).meta
    mine = {t.id: t for t in await meta.list_api_tokens(principal.user_id)}
    if token_id not in mine:
        raise NotFound("no such token")
    await meta.revoke_api_token(token_id, principal.user_id)
    services(request).registry.revoke(
        4401,
        "token revoked",
        lambda peer: peer.principal is not None and peer.principal.token_id == token_id,
        user=principal.user_id,
    )
    await access.audit(request, principal, "token.revoke", target=token_id)
    return Response(status_code=204)
