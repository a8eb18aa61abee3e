"""``GET /api/v1/search?q=&room=&kind=chat|doc&cursor=&limit=``: one box over chat and docs.

Where the caller may look is decided at query time, through the policy every door uses
(``collab.auth.policy``), never from what the index remembers: without ``room``, the rooms
and direct messages the caller is a member of now (a removed member finds nothing of the
room from the next query on); with ``room``, that room if the caller may read it (404
otherwise, as every room route answers a non-member). A room token or ticket looks only in
its room, and, when it is limited to some docs, only in those docs (and in the chat only if
``chat`` is one of them). The query's grammar and its refusals are ``collab.search.query``'s
(docs/search.md).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from collab.api import access, parsing
from collab.api.handler import api_endpoint
from collab.auth.policy import effective_role
from collab.auth.principal import Principal
from collab.chat import CHAT
from collab.errors import BadName, BadRequest
from collab.meta import Role
from collab.names import is_valid_name
from collab.search import KINDS, Hit, Kind, QueryTooSlow, Scope, parse_query
from collab.search.snippets import Snippet
from collab.services import services

DEFAULT_LIMIT = 20


def hit_json(hit: Hit) -> dict[str, Any]:
    chat = hit.kind == "chat"
    return {
        "kind": hit.kind,
        "room": hit.room,
        "message": hit.key if chat else None,
        "seq": hit.seq if chat else None,
        "author": hit.author if chat else None,
        "doc": None if chat else hit.key,
        "time": hit.at,
        "snippet": hit.snippet,
        "highlights": [list(r) for r in hit.highlights],
        "snippet_html": Snippet(hit.snippet, hit.highlights).html(),
    }


async def readable_rooms(request: Request, principal: Principal, room: str | None) -> list[str]:
    """The rooms this caller may read now (the policy's answer, per room)."""
    if room is None and principal.room_scope is not None:
        room = principal.room_scope
    if room is not None:
        await access.require_role(request, principal, room, Role.viewer)  # 404 otherwise
        return [room]
    meta = services(request).meta
    memberships = await meta.list_rooms_for(principal.user_id)
    rooms = [r.id for r, role in memberships if effective_role(principal, role) is not None]
    if effective_role(principal, Role.editor) is not None:  # both people of a DM are editors
        rooms += [dm.id for dm in await meta.list_dms_for(principal.user_id)]
    return rooms


async def scopes_for(request: Request, principal: Principal, rooms: list[str]) -> list[Scope]:
    """What of each room the credential lets the caller see (a room token's doc pattern)."""
    if principal.doc_pattern is None:
        return [Scope(room) for room in rooms]
    index = services(request).search.index
    scopes = []
    for room in rooms:
        docs = tuple(d for d in await index.doc_names(room) if principal.allows(room, d))
        scopes.append(Scope(room, chat=principal.allows(room, CHAT), docs=docs))
    return scopes


def _kind(request: Request) -> Kind | None:
    raw = request.query_params.get("kind") or None
    if raw is None:
        return None
    for kind in KINDS:
        if raw == kind:
            return kind
    raise BadRequest("'kind' must be chat or doc")


def _room(request: Request) -> str | None:
    raw = request.query_params.get("room") or None
    if raw is not None and not is_valid_name(raw):
        raise BadName("bad room name")
    return raw


def _cursor(request: Request) -> int | None:
    cursor = parsing.decode_cursor(request.query_params.get("cursor"))
    if cursor is None:
        return None
    if len(cursor) != 1 or not isinstance(cursor[0], int) or isinstance(cursor[0], bool):
        raise BadRequest("bad cursor")
    if not 0 < cursor[0] < 2**62:
        raise BadRequest("bad cursor")
    return cursor[0]


@api_endpoint
async def search(request: Request) -> Response:
    """Search chat messages and documents of the rooms the caller may read, newest first."""
    principal = await access.require_principal(request)
    query = parse_query(request.query_params.get("q", ""))
    kind, room, before = _kind(request), _room(request), _cursor(request)
    limit = parsing.int_param(request, "limit", DEFAULT_LIMIT, 1, parsing.MAX_LIMIT)
    rooms = await readable_rooms(request, principal, room)
    scopes = await scopes_for(request, principal, rooms)
    try:
        page = await services(request).search.search(
            query, scopes, kind=kind, before=before, limit=limit
        )
    except QueryTooSlow:
        raise BadRequest("the query took too long: add words, or search one room") from None
    cursor = parsing.encode_cursor([page.next_before]) if page.next_before else None
    return parsing.page_response([hit_json(hit) for hit in page.hits], cursor)
