"""The operations of ``/api/v1``: one table, routed and documented from it.

``api_routes()`` is mounted at ``/api/v1`` by ``collab.app``; ``openapi.json`` is generated
from the same table (``OPERATIONS``), so every route is documented by construction.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, Route

from collab.api import audit, docs, invites, members, openapi, rooms, tokens, users
from collab.api.handler import api_endpoint
from collab.api.openapi import Operation
from collab.errors import MethodNotAllowed, NotFound

_ROOM = "/rooms/{room}"

OPERATIONS: list[Operation] = [
    Operation("/rooms", "POST", rooms.create_room, 201, body="room_create"),
    Operation("/rooms", "GET", rooms.list_rooms, paginated=True),
    Operation(_ROOM, "GET", rooms.get_room),
    Operation(_ROOM, "PATCH", rooms.update_room, body="room_update"),
    Operation(_ROOM, "DELETE", rooms.delete_room, 204),
    Operation(_ROOM + "/members", "GET", members.list_members, paginated=True),
    Operation(_ROOM + "/members", "POST", members.add_member, 201, body="member_add"),
    Operation(_ROOM + "/members/{user}", "PATCH", members.update_member, body="member_update"),
    Operation(_ROOM + "/members/{user}", "DELETE", members.remove_member, 204),
    Operation(_ROOM + "/docs", "GET", docs.list_docs, paginated=True),
    Operation(_ROOM + "/docs/{doc}", "DELETE", docs.delete_doc, 204),
    Operation(_ROOM + "/invites", "POST", invites.create_invite, 201, body="invite_create"),
    Operation("/invites/{code}/accept", "POST", invites.accept_invite),
    Operation(_ROOM + "/tokens", "POST", tokens.mint_token, 201, body="room_token"),
    Operation(_ROOM + "/tokens/{token_id}", "DELETE", tokens.revoke_room_token, 204),
    Operation(_ROOM + "/tickets", "POST", tokens.create_ticket, 201, body="ticket"),
    Operation(_ROOM + "/audit", "GET", audit.room_audit, paginated=True),
    Operation("/tokens", "GET", tokens.list_api_tokens, paginated=True),
    Operation("/tokens", "POST", tokens.create_api_token, 201, body="api_token"),
    Operation("/tokens/{token_id}", "DELETE", tokens.revoke_api_token, 204),
    Operation("/me", "GET", users.me),
    Operation("/users/{user}", "PATCH", users.update_user, body="user_update"),
    Operation("/openapi.json", "GET", openapi.openapi_endpoint(lambda: OPERATIONS)),
]


def api_routes() -> list[BaseRoute]:
    """Every API route, then a fallback answering unknown paths and methods in JSON."""
    routes: list[BaseRoute] = [
        Route(op.path, op.handler, methods=[op.method], name=op.handler.__name__)
        for op in OPERATIONS
    ]

    @api_endpoint
    async def fallback(request: Request) -> Response:
        if any(route.matches(request.scope)[0] != Match.NONE for route in routes):
            raise MethodNotAllowed("method not allowed")
        raise NotFound("no such API route")

    methods = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
    return [*routes, Route("/{rest:path}", fallback, methods=methods, include_in_schema=False)]
