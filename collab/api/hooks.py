"""Incoming webhooks: an outside system posts into a room's chat as a named bot, by URL.

An owner creates one (``POST /rooms/{room}/hooks {"name"}``): a bot of that name joins the
room as a commenter, and the answer carries the hook's URL, ``/api/v1/hooks/{id}.{secret}``,
once (only the secret's digest is stored). Anyone holding the URL posts
``{"text", "client_id"?}`` to it, like Slack's incoming webhooks: the message is the bot's,
checked like any post (the bot's role now, the text's length), at the bot's chat-write rate
(``chat_write_rate``: 429 past it); ``client_id`` makes a retry post once. A wrong secret is
401 and counts against the caller's address like any failed credential (429 past
``auth_failure_burst``); a revoked or unknown hook is 404. The URL is a credential:
``collab.auth.redact.SECRET_PATHS`` keeps it out of every log line.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from collab.api import access, parsing
from collab.api.bots import make_bot_user, name_field
from collab.api.handler import api_endpoint
from collab.api.messages import message_json
from collab.chat import Actor
from collab.errors import BadRequest, Forbidden, NotFound, Rate, TooManyRequests, Unauthorized
from collab.meta import AuditEvent, IncomingHook, Role
from collab.ratelimit import client_address
from collab.services import services

NO_DM_HOOKS = "webhooks are not added to direct messages"
HOOK_PATH = "/api/v1/hooks/"


def hook_json(hook: IncomingHook) -> dict[str, Any]:
    return {
        "id": hook.id,
        "name": hook.name,
        "bot": hook.bot_id,
        "created_by": hook.created_by,
        "created_at": hook.created_at,
        "last_used_at": hook.last_used_at,
        "revoked": hook.revoked,
    }


def hook_url(request: Request, path: str) -> str:
    base = services(request).settings.public_url or str(request.base_url)
    return base.rstrip("/") + path


@api_endpoint
async def create_hook(request: Request) -> Response:
    """Create an incoming webhook posting as a new bot (owners); its URL is shown once."""
    principal = await access.require_principal(request, personal=True)
    room_id = parsing.room_param(request)
    await access.require_role_outside_dm(request, principal, room_id, Role.owner, NO_DM_HOOKS)
    name = name_field(await parsing.read_json(request))
    meta = services(request).meta
    bot = await make_bot_user(request, name)
    await meta.add_member(room_id, bot.id, Role.commenter)
    services(request).registry.apply_member_role(room_id, bot.id, Role.commenter)
    hook, secret = await meta.create_incoming_hook(room_id, bot.id, name, principal.user_id)
    await access.audit(request, principal, "hook.create", room_id=room_id, target=hook.id)
    path = f"{HOOK_PATH}{hook.id}.{secret}"
    answer = {**hook_json(hook), "url": hook_url(request, path), "path": path}
    return JSONResponse(answer, status_code=201)


@api_endpoint
async def list_hooks(request: Request) -> Response:
    """The room's incoming webhooks, never their URLs (owners, with a personal credential as
    for every route managing the room's integrations)."""
    principal = await access.require_principal(request, personal=True)
    room_id = parsing.room_param(request)
    await access.require_role(request, principal, room_id, Role.owner)
    hooks = await services(request).meta.list_incoming_hooks(room_id)
    page, cursor = parsing.paginate(request, hooks, lambda h: [h.created_at, h.id])
    return parsing.page_response([hook_json(h) for h in page], cursor)


@api_endpoint
async def revoke_hook(request: Request) -> Response:
    """Revoke an incoming webhook (owners): its URL answers 404 from now on."""
    principal = await access.require_principal(request, personal=True)
    room_id = parsing.room_param(request)
    await access.require_role(request, principal, room_id, Role.owner)
    hook_id = str(request.path_params["hook"])
    if await services(request).meta.revoke_incoming_hook(room_id, hook_id) is None:
        raise NotFound("no such webhook")
    await access.audit(request, principal, "hook.revoke", room_id=room_id, target=hook_id)
    return Response(status_code=204)


@api_endpoint
async def post_by_hook(request: Request) -> Response:
    """Post into the hook's room as its bot (no other credential: the URL is one)."""
    hook = await _hook(request)
    shared = services(request)
    wait = await shared.api_limits[Rate.chat].take(hook.bot_id)
    if wait > 0:
        raise TooManyRequests(Rate.chat, wait, "too many posts through this webhook")
    body = await parsing.read_json(request)
    text = parsing.get_field(body, "text", str)
    if text is None:
        raise BadRequest("'text' is required")
    client_id = parsing.get_field(body, "client_id", str) or uuid.uuid4().hex
    member = await shared.meta.get_member(hook.room_id, hook.bot_id)
    bot = await shared.meta.get_user(hook.bot_id)
    if member is None or bot is None or bot.disabled:
        raise Forbidden("this webhook's bot is no longer a member of the room")
    actor = Actor(bot.id, bot.name, bot.handle or None, member.role)
    message, created = await shared.chat.post(hook.room_id, actor, text, client_id)
    return JSONResponse(message_json(message, bot.id), status_code=201 if created else 200)


async def _hook(request: Request) -> IncomingHook:
    """The live hook the path names; 404 unknown or revoked, 401 (counted) wrong secret."""
    hook_id, dot, secret = str(request.path_params["token"]).partition(".")
    if not dot or len(hook_id) != 32 or not secret or len(secret) > 128:
        raise NotFound("no such webhook")
    shared = services(request)
    address = client_address(request)
    await shared.credential_guard.check(address, "api")
    found = await shared.meta.find_incoming_hook(hook_id, secret)
    if found is None:
        raise NotFound("no such webhook")
    hook, valid = found
    if not valid:
        await shared.credential_guard.failed(address, "api")
        detail = {"door": "hook", "credential": "hook", "reason": "wrong secret"}
        event = AuditEvent(
            at=time.time(),
            action="auth.failure",
            room_id=hook.room_id,
            target=hook.id,
            detail=detail,
            ip=address,
        )
        await shared.meta.record(event)
        raise Unauthorized("wrong webhook secret")
    return hook
