"""Members: list (any member), add by user id, invite by email, change role, remove (owner).

Every change is written to the MetaStore first, then applied to open sockets at once through
``RoomRegistry.apply_member_role`` (a removal closes them 4403), then audited. A room always
keeps an owner: the last one can be neither demoted nor removed, checked and written in one
step (``MetaStore.update_member``), so two owners demoting each other at once cannot both
succeed. A demotion or removal voids the invites the member created. In a direct message
nobody is added, removed (nor leaves) or has their role changed: 409 (``meta.DM_MEMBERS``).

Adding by email adds nobody: it records a pending invitation for that address (202), which the
user whose identity provider verified it sees at ``GET /api/v1/me/invites`` after logging in
and may accept or decline. The answer is the same whether or not an account has that address,
so an owner cannot learn who has one; no email is sent.
"""

from __future__ import annotations

import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from collab.api import access, parsing
from collab.api.handler import api_endpoint
from collab.api.invites import DEFAULT_TTL, email_field, invite_json
from collab.auth.principal import Principal
from collab.errors import BadRequest, Conflict, NotFound
from collab.meta import DM_MEMBERS, Member, MemberChange, Role, User
from collab.services import services


def member_json(member: Member, user: User | None) -> dict[str, Any]:
    return {
        "user_id": member.user_id,
        "name": user.name if user else "",
        "handle": user.handle if user else None,
        "role": member.role.name,
        "added_at": member.added_at,
    }


@api_endpoint
async def list_members(request: Request) -> Response:
    """The room's members and their roles."""
    principal = await access.require_principal(request)
    room_id = parsing.room_param(request)
    await access.require_role(request, principal, room_id, Role.viewer)
    meta = services(request).meta
    members = await meta.list_members(room_id)
    page, cursor = parsing.paginate(request, members, lambda m: [m.added_at, m.user_id])
    items = [member_json(m, await meta.get_user(m.user_id)) for m in page]
    return parsing.page_response(items, cursor)


def _apply(request: Request, room_id: str, user_id: str, role: Role | None) -> None:
    services(request).registry.apply_member_role(room_id, user_id, role)


@api_endpoint
async def add_member(request: Request) -> Response:
    """Add a user by id (201), or invite an email address (202: a pending invitation)."""
    principal = await access.require_principal(request, personal=True)
    room_id = parsing.room_param(request)
    await access.require_role_outside_dm(request, principal, room_id, Role.owner, DM_MEMBERS)
    body = await parsing.read_json(request)
    role = parsing.role_field(body)
    user_id, email = parsing.get_field(body, "user_id", str), email_field(body)
    if (user_id is None) == (email is None):
        raise BadRequest("give exactly one of 'user_id' and 'email'")
    if email is not None:
        return await _invite_email(request, principal, room_id, role, email)
    assert user_id is not None
    meta = services(request).meta
    user = await meta.get_user(user_id)
    if user is None:
        raise NotFound("no such user")
    try:
        member = await meta.add_member(room_id, user.id, role)
    except Conflict:
        raise Conflict("already a member: PATCH the member to change the role") from None
    _apply(request, room_id, user.id, role)
    await access.audit(
        request, principal, "member.add", room_id=room_id, target=user.id, role=role.name
    )
    return JSONResponse(member_json(member, user), status_code=201)


async def _invite_email(
    request: Request, principal: Principal, room_id: str, role: Role, email: str
) -> Response:
    """Record a pending invitation for ``email``, answering alike whoever has the address."""
    meta = services(request).meta
    invite, _ = await meta.create_invite(room_id, role, principal.user_id, DEFAULT_TTL, email=email)
    await access.audit(
        request, principal, "member.invite", room_id=room_id, target=invite.id, role=role.name
    )
    return JSONResponse(invite_json(invite, time.time()), status_code=202)


@api_endpoint
async def update_member(request: Request) -> Response:
    """Change a member's role (owner); open sockets follow at once."""
    principal = await access.require_principal(request, personal=True)
    room_id = parsing.room_param(request)
    await access.require_role_outside_dm(request, principal, room_id, Role.owner, DM_MEMBERS)
    role = parsing.role_field(await parsing.read_json(request))
    change = await _change(request, room_id, role)
    assert change.current is not None
    await access.audit(
        request,
        principal,
        "member.role",
        room_id=room_id,
        target=change.current.user_id,
        role=role.name,
        previous=change.previous.role.name,
        invites_voided=change.voided_invites,
    )
    user = await services(request).meta.get_user(change.current.user_id)
    return JSONResponse(member_json(change.current, user))


async def _change(request: Request, room_id: str, role: Role | None) -> MemberChange:
    """Change or remove the path's member in one checked step, then follow on open sockets."""
    user_id = str(request.path_params["user"])
    try:
        change = await services(request).meta.update_member(room_id, user_id, role)
    except NotFound:
        raise NotFound("not a member of this room") from None
    _apply(request, room_id, user_id, role)
    return change


async def _may_remove(request: Request, principal: Principal, room_id: str, user_id: str) -> None:
    """Owners remove anyone; any member may leave (but for a direct message: 409)."""
    minimum = Role.viewer if user_id == principal.user_id else Role.owner
    await access.require_role_outside_dm(request, principal, room_id, minimum, DM_MEMBERS)


@api_endpoint
async def remove_member(request: Request) -> Response:
    """Remove a member (owner), or leave the room (oneself); their sockets close 4403."""
    principal = await access.require_principal(request, personal=True)
    room_id = parsing.room_param(request)
    await _may_remove(request, principal, room_id, str(request.path_params["user"]))
    change = await _change(request, room_id, None)
    await access.audit(
        request,
        principal,
        "member.remove",
        room_id=room_id,
        target=change.previous.user_id,
        previous=change.previous.role.name,
        invites_voided=change.voided_invites,
    )
    return Response(status_code=204)
