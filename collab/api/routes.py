"""The operations of ``/api/v1``: one table, routed and documented from it.

``api_routes()`` is mounted at ``/api/v1`` by ``collab.app``; ``openapi.json`` is generated
from the same table (``OPERATIONS``), so every route is documented by construction. A row
with a ``rate`` creates things of that kind: its handler is wrapped once here to spend a token
of the caller's per-user bucket first (429 with ``Retry-After`` when empty).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, Route

from collab.api import (
    access,
    audit,
    bots,
    dms,
    docs,
    files,
    hooks,
    invites,
    members,
    messages,
    my_invites,
    openapi,
    reads,
    rooms,
    search,
    server_info,
    tokens,
    users,
    webhooks,
)
from collab.api.handler import Handler, api_endpoint
from collab.api.openapi import Operation
from collab.errors import MethodNotAllowed, NotFound, Rate

_ROOM = "/rooms/{room}"
_MINE = "/me/invites/{invite}"
_MESSAGE = _ROOM + "/messages/{message}"
_BOT = _ROOM + "/bots/{bot}"
_HOOK = _ROOM + "/webhooks/{hook}"
_DELIVERY = _HOOK + "/deliveries/{delivery}"
_FILE = _ROOM + "/files/{file}"
_HISTORY = (("before_seq", "integer"), ("after_seq", "integer"), ("thread", "string"))
_SEARCH = (("q", "string"), ("room", "string"), ("kind", "string"))

OPERATIONS: list[Operation] = [
    Operation("/rooms", "POST", rooms.create_room, 201, body="room_create", rate=Rate.rooms),
    Operation("/rooms", "GET", rooms.list_rooms, paginated=True),
    Operation(_ROOM, "GET", rooms.get_room),
    Operation(_ROOM, "PATCH", rooms.update_room, body="room_update"),
    Operation(_ROOM, "DELETE", rooms.delete_room, 204),
    Operation(_ROOM + "/members", "GET", members.list_members, paginated=True),
    Operation(
        _ROOM + "/members",
        "POST",
        members.add_member,
        201,
        body="member_add",
        rate=Rate.members,
        also=(202,),
    ),
    Operation(_ROOM + "/members/{user}", "PATCH", members.update_member, body="member_update"),
    Operation(_ROOM + "/members/{user}", "DELETE", members.remove_member, 204),
    Operation(_ROOM + "/docs", "GET", docs.list_docs, paginated=True),
    Operation(
        _ROOM + "/docs/{doc}",
        "PATCH",
        docs.update_doc,
        body="doc_update",
        rate=Rate.docs,
        also=(201,),
    ),
    Operation(_ROOM + "/docs/{doc}", "DELETE", docs.delete_doc, 204),
    Operation(
        _ROOM + "/invites",
        "POST",
        invites.create_invite,
        201,
        body="invite_create",
        rate=Rate.invites,
    ),
    Operation(_ROOM + "/invites", "GET", invites.list_invites, paginated=True),
    Operation(_ROOM + "/invites/{invite}", "DELETE", invites.revoke_invite, 204),
    Operation("/invites/{code}/accept", "POST", invites.accept_invite),
    Operation(
        _ROOM + "/tokens", "POST", tokens.mint_token, 201, body="room_token", rate=Rate.room_tokens
    ),
    # A revocation is a stored record too: it spends from the same per-user room-token rate.
    Operation(
        _ROOM + "/tokens/{token_id}",
        "DELETE",
        tokens.revoke_room_token,
        204,
        rate=Rate.room_tokens,
    ),
    Operation(
        _ROOM + "/tickets", "POST", tokens.create_ticket, 201, body="ticket", rate=Rate.tickets
    ),
    Operation(
        _ROOM + "/messages",
        "POST",
        messages.post_message,
        201,
        body="message_post",
        rate=Rate.chat,
        also=(200,),
    ),
    Operation(_ROOM + "/messages", "GET", messages.list_messages, paginated=True, query=_HISTORY),
    Operation(_MESSAGE, "GET", messages.get_message),
    Operation(_MESSAGE, "PATCH", messages.edit_message, body="message_edit", rate=Rate.chat),
    Operation(_MESSAGE, "DELETE", messages.delete_message, 204, rate=Rate.chat),
    Operation(_MESSAGE + "/reactions/{emoji}", "PUT", messages.add_reaction, rate=Rate.chat),
    Operation(_MESSAGE + "/reactions/{emoji}", "DELETE", messages.remove_reaction, rate=Rate.chat),
    Operation(_ROOM + "/read", "POST", reads.mark_read, body="read_marker", rate=Rate.chat),
    Operation(_ROOM + "/reads", "GET", reads.list_reads, paginated=True),
    Operation(
        _ROOM + "/files", "POST", files.upload_file, 201, body="file_upload", rate=Rate.files
    ),
    Operation(_ROOM + "/files", "GET", files.list_files, paginated=True),
    Operation(_FILE, "GET", files.download_file, also=(206, 304)),
    Operation(_FILE, "DELETE", files.delete_file, 204),
    Operation(_FILE + "/preview", "GET", files.preview_file, also=(304,)),
    Operation(_ROOM + "/audit", "GET", audit.room_audit, paginated=True),
    Operation("/search", "GET", search.search, paginated=True, query=_SEARCH, rate=Rate.search),
    Operation(_ROOM + "/bots", "POST", bots.create_bot, 201, body="bot_create", rate=Rate.members),
    Operation(_ROOM + "/bots", "GET", bots.list_bots, paginated=True),
    Operation(_BOT, "DELETE", bots.delete_bot, 204),
    Operation(_BOT + "/tokens", "POST", bots.mint_bot_token, 201, rate=Rate.api_tokens),
    Operation(
        _ROOM + "/hooks", "POST", hooks.create_hook, 201, body="hook_create", rate=Rate.members
    ),
    Operation(_ROOM + "/hooks", "GET", hooks.list_hooks, paginated=True),
    Operation(_ROOM + "/hooks/{hook}", "DELETE", hooks.revoke_hook, 204),
    Operation(
        _ROOM + "/webhooks",
        "POST",
        webhooks.create_webhook,
        201,
        body="webhook_create",
        rate=Rate.webhooks,
    ),
    Operation(_ROOM + "/webhooks", "GET", webhooks.list_webhooks, paginated=True),
    Operation(_HOOK, "GET", webhooks.get_webhook),
    Operation(_HOOK, "PATCH", webhooks.update_webhook, body="webhook_update"),
    Operation(_HOOK, "DELETE", webhooks.delete_webhook, 204),
    Operation(_HOOK + "/deliveries", "GET", webhooks.list_deliveries, paginated=True),
    Operation(_DELIVERY, "GET", webhooks.list_attempts),
    Operation(_DELIVERY + "/redeliver", "POST", webhooks.redeliver, 202, rate=Rate.webhooks),
    # The URL is the credential (collab.auth.redact.SECRET_PATHS keeps it out of the logs).
    Operation("/hooks/{token}", "POST", hooks.post_by_hook, 201, body="hook_post", also=(200,)),
    Operation("/tokens", "GET", tokens.list_api_tokens, paginated=True),
    Operation(
        "/tokens", "POST", tokens.create_api_token, 201, body="api_token", rate=Rate.api_tokens
    ),
    Operation("/tokens/{token_id}", "DELETE", tokens.revoke_api_token, 204),
    Operation("/me", "GET", users.me),
    Operation("/server", "GET", server_info.server_info),
    Operation("/me", "PATCH", users.update_me, body="me_update", rate=Rate.profile),
    Operation("/dms", "POST", dms.open_dm, 201, body="dm_open", rate=Rate.dms, also=(200,)),
    Operation("/dms", "GET", dms.list_dms, paginated=True),
    Operation("/me/invites", "GET", my_invites.list_my_invites, paginated=True),
    Operation("/me/inbox", "GET", reads.list_inbox, paginated=True, query=(("unread", "integer"),)),
    Operation("/me/inbox/read", "POST", reads.mark_inbox_read, body="inbox_read", rate=Rate.chat),
    Operation(_MINE + "/accept", "POST", my_invites.accept_my_invite),
    Operation(_MINE + "/decline", "POST", my_invites.decline_my_invite, 204),
    Operation("/users/{user}", "PATCH", users.update_user, body="user_update"),
    Operation("/openapi.json", "GET", openapi.openapi_endpoint(lambda: OPERATIONS)),
]


def _limited(op: Operation) -> Handler:
    """The row's handler, spending the caller's token for its ``rate`` first (if it has one)."""
    handler, kind = op.handler, op.rate
    if kind is None:
        return handler

    @api_endpoint
    async def limited(request: Request) -> Response:
        await access.spend(request, kind)
        return await handler(request)

    return limited


def api_routes() -> list[BaseRoute]:
    """Every API route, then a fallback answering unknown paths and methods in JSON."""
    routes: list[BaseRoute] = [
        Route(op.path, _limited(op), methods=[op.method], name=op.handler.__name__)
        for op in OPERATIONS
    ]

    @api_endpoint
    async def fallback(request: Request) -> Response:
        if any(route.matches(request.scope)[0] != Match.NONE for route in routes):
            raise MethodNotAllowed("method not allowed")
        raise NotFound("no such API route")

    methods = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
    return [*routes, Route("/{rest:path}", fallback, methods=methods, include_in_schema=False)]
