"""The caller's pending invitations: ``GET /me/invites``, and accept or decline one.

An owner who adds a member by email records an invitation for that address; the user whose
identity provider *verified* the address sees it here after logging in, with the room's title
and who invited them, and decides. Every lookup goes through the caller's own verified email,
so an invitation that is not theirs answers exactly like one that does not exist (404).
"""

from __future__ import annotations

import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from collab.api import access, parsing
from collab.api.handler import api_endpoint
from collab.api.invites import invite_json, redeem
from collab.auth.principal import Principal
from collab.errors import NotFound
from collab.meta import Invite
from collab.services import services

NOT_YOURS = "no such pending invitation"


async def _mine(request: Request, principal: Principal) -> list[Invite]:
    """The pending invitations for the caller's verified email (none without one)."""
    if principal.email is None:
        return []
    return await services(request).meta.invites_for_email(principal.email)


async def _one(request: Request, principal: Principal) -> Invite:
    wanted = str(request.path_params["invite"])
    for invite in await _mine(request, principal):
        if invite.id == wanted:
            return invite
    raise NotFound(NOT_YOURS)


@api_endpoint
async def list_my_invites(request: Request) -> Response:
    """The caller's pending invitations (by their verified email), oldest first."""
    principal = await access.require_principal(request, personal=True)
    invites = await _mine(request, principal)
    page, cursor = parsing.paginate(request, invites, lambda i: [i.created_at, i.id])
    meta, now = services(request).meta, time.time()
    items: list[dict[str, Any]] = []
    for invite in page:
        room = await meta.get_room(invite.room_id)
        inviter = await meta.get_user(invite.created_by)
        items.append(
            {
                **invite_json(invite, now),
                "room_title": room.title if room else "",
                "invited_by_name": inviter.name if inviter else "",
                "invited_by_handle": inviter.handle if inviter else None,
            }
        )
    return parsing.page_response(items, cursor)


@api_endpoint
async def accept_my_invite(request: Request) -> Response:
    """Accept one of the caller's invitations: they join the room with its role."""
    principal = await access.require_principal(request, personal=True)
    invite = await _one(request, principal)
    member = await redeem(request, principal, invite, None)
    return JSONResponse({"room": member.room_id, "role": member.role.name})


@api_endpoint
async def decline_my_invite(request: Request) -> Response:
    """Decline one of the caller's invitations (the room's owners see it in the audit log)."""
    principal = await access.require_principal(request, personal=True)
    invite = await _one(request, principal)
    try:
        await services(request).meta.close_invite(invite.id, "declined")
    except NotFound:
        raise NotFound(NOT_YOURS) from None
    await access.audit(
        request, principal, "invite.decline", room_id=invite.room_id, target=invite.id
    )
    return Response(status_code=204)
