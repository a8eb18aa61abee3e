"""Bots as room members, managed by the room's owners (``/rooms/{room}/bots``).

``POST`` makes a bot user (issuer ``collab:bot``, its handle from its name), adds it to the
room with the role asked for (at most the owner's own), and answers its first personal API
token once (only its digest is stored). What the bot then does is its own: it authenticates
as itself, so the audit log names it as the actor. ``POST .../bots/{bot}/tokens`` mints
another token (rotation); ``DELETE`` removes the bot from the room, disables it (every token
it has stops working) and closes its sockets (4401). Only the room that made a bot manages
it: another room's bot, or any other user, is 404 here. Not in a direct message (409).
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from collab.api import access, parsing
from collab.api.handler import api_endpoint
from collab.auth.principal import Principal
from collab.auth.tokens import BOT_ISSUER
from collab.errors import BadRequest, NotFound
from collab.meta import BotRecord, Role, User
from collab.services import services

MAX_NAME = 64
NO_DM_BOTS = "bots are not added to direct messages"


def bot_json(bot: BotRecord, user: User | None, role: Role | None) -> dict[str, Any]:
    return {
        "id": bot.user_id,
        "name": bot.name,
        "handle": user.handle if user else None,
        "role": role.name if role else None,
        "room": bot.room_id,
        "created_by": bot.created_by,
        "created_at": bot.created_at,
    }


def name_field(body: dict[str, Any]) -> str:
    name = parsing.get_field(body, "name", str)
    if name is None or not name.strip() or len(name) > MAX_NAME or not name.isprintable():
        raise BadRequest(f"'name' must be 1 to {MAX_NAME} printable characters")
    return name.strip()


async def make_bot_user(request: Request, name: str) -> User:
    """A new bot user (its handle from its name, made unique)."""
    return await services(request).meta.upsert_oidc_user(
        BOT_ISSUER,
        uuid.uuid4().hex,
        name=name,
        email=None,
        email_verified=False,
        picture=None,
        preferred_handle=name,
    )


async def _owner(request: Request) -> tuple[Principal, str, Role]:
    principal = await access.require_principal(request, personal=True)
    room_id = parsing.room_param(request)
    role = await access.require_role_outside_dm(request, principal, room_id, Role.owner, NO_DM_BOTS)
    return principal, room_id, role


async def _room_bot(request: Request, room_id: str) -> BotRecord:
    bot = await services(request).meta.get_bot(room_id, str(request.path_params["bot"]))
    if bot is None:
        raise NotFound("no such bot in this room")
    return bot


@api_endpoint
async def create_bot(request: Request) -> Response:
    """Add a bot to the room (owners); its first token is in this answer only."""
    principal, room_id, own = await _owner(request)
    body = await parsing.read_json(request)
    name = name_field(body)
    role = parsing.role_field(body, default=Role.commenter)
    if role > own:
        raise BadRequest(f"a bot's role is at most {own.name}")
    meta = services(request).meta
    user = await make_bot_user(request, name)
    await meta.add_member(room_id, user.id, role)
    services(request).registry.apply_member_role(room_id, user.id, role)  # members' streams
    bot = BotRecord(user.id, room_id, name, principal.user_id, time.time())
    await meta.add_bot(bot)
    token, secret = await meta.create_api_token(user.id, f"bot of {room_id}")
    await access.audit(
        request, principal, "bot.create", room_id=room_id, target=user.id, role=role.name
    )
    await access.audit(request, principal, "token.create", room_id=room_id, target=token.id)
    answer = {"bot": bot_json(bot, user, role), "token": secret, "token_id": token.id}
    return JSONResponse(answer, status_code=201)


@api_endpoint
async def list_bots(request: Request) -> Response:
    """The bots this room made (owners)."""
    _, room_id, _ = await _owner(request)
    meta = services(request).meta
    bots = await meta.list_bots(room_id)
    page, cursor = parsing.paginate(request, bots, lambda b: [b.created_at, b.user_id])
    items = []
    for bot in page:
        member = await meta.get_member(room_id, bot.user_id)
        user = await meta.get_user(bot.user_id)
        items.append(bot_json(bot, user, member.role if member else None))
    return parsing.page_response(items, cursor)


@api_endpoint
async def mint_bot_token(request: Request) -> Response:
    """Another personal API token for one of the room's bots (owners): shown once."""
    principal, room_id, _ = await _owner(request)
    bot = await _room_bot(request, room_id)
    token, secret = await services(request).meta.create_api_token(bot.user_id, f"bot of {room_id}")
    await access.audit(
        request, principal, "token.create", room_id=room_id, target=token.id, bot=bot.user_id
    )
    return JSONResponse({"id": token.id, "token": secret, "bot": bot.user_id}, status_code=201)


@api_endpoint
async def delete_bot(request: Request) -> Response:
    """Remove one of the room's bots (owners): disabled, its tokens dead, sockets closed."""
    principal, room_id, _ = await _owner(request)
    bot = await _room_bot(request, room_id)
    shared = services(request)
    meta = shared.meta
    if await meta.get_member(room_id, bot.user_id) is not None:
        await meta.update_member(room_id, bot.user_id, None)
    await meta.set_user_disabled(bot.user_id, True)
    for token in await meta.list_api_tokens(bot.user_id):
        await meta.revoke_api_token(token.id, bot.user_id)
    await meta.remove_bot(room_id, bot.user_id)
    closed = shared.registry.revoke(
        4401,
        "bot removed",
        lambda peer: peer.principal is not None and peer.principal.user_id == bot.user_id,
        user=bot.user_id,
    )
    # Other nodes close the bot's sockets 4401 on the access notice above (it is disabled): a
    # role notice too could close them 4403 first there.
    shared.registry.apply_member_role(room_id, bot.user_id, None, announce=False)
    await access.audit(
        request, principal, "bot.delete", room_id=room_id, target=bot.user_id, sockets=closed
    )
    return Response(status_code=204)
