"""Members: list (any member), add by user id or verified email, change role, remove (owner).

Every change is written to the MetaStore first, then applied to open sockets at once through
``RoomRegistry.apply_member_role`` (a removal closes them 4403), then audited. A room always
keeps an owner: the last one can be neither demoted nor removed.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from collab.api import access, parsing
from collab.api.handler import api_endpoint
from collab.auth.principal import Principal
from collab.errors import BadRequest, Conflict, NotFound
from collab.meta import Member, Role, User
from collab.services import services


def member_json(member: Member, user: User | None) -> dict[str, Any]:
    return {
        "user_id": member.user_id,
        "name": user.name if user else "",
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


async def _find_user(request: Request, body: dict[str, Any]) -> User:
    meta = services(request).meta
    user_id = parsing.get_field(body, "user_id", str)
    email = parsing.get_field(body, "email", str)
    if (user_id is None) == (email is None):
        raise BadRequest("give exactly one of 'user_id' and 'email'")
    if user_id is not None:
        user = await meta.get_user(user_id)
    else:
        assert email is not None
        user = await meta.find_user_by_verified_email(email.strip())
    if user is None:
        what = "user" if user_id is not None else "user with this verified email"
        raise NotFound(f"no such {what}")
    return user


async def _guard_last_owner(request: Request, room_id: str, current: Member) -> None:
    if current.role != Role.owner:
        return
    owners = [m for m in await services(request).meta.list_members(room_id) if m.role == Role.owner]
    if len(owners) <= 1:
        raise Conflict("a room keeps at least one owner")


def _apply(request: Request, room_id: str, user_id: str, role: Role | None) -> None:
    services(request).registry.apply_member_role(room_id, user_id, role)


@api_endpoint
async def add_member(request: Request) -> Response:
    """Add a user (by id, or by an email their identity provider verified) with a role."""
    principal = await access.require_principal(request, personal=True)
    room_id = parsing.room_param(request)
    await access.require_role(request, principal, room_id, Role.owner)
    body = await parsing.read_json(request)
    role = parsing.role_field(body)
    user = await _find_user(request, body)
    meta = services(request).meta
    if await meta.get_member(room_id, user.id) is not None:
        raise Conflict("already a member: PATCH the member to change the role")
    member = await meta.set_member(room_id, user.id, role)
    _apply(request, room_id, user.id, role)
    await access.audit(
        request, principal, "member.add", room_id=room_id, target=user.id, role=role.name
    )
    return JSONResponse(member_json(member, user), status_code=201)


async def _member(request: Request, room_id: str) -> Member:
    user_id = str(request.path_params["user"])
    member = await services(request).meta.get_member(room_id, user_id)
    if member is None:
        raise NotFound("not a member of this room")
    return member


@api_endpoint
async def update_member(request: Request) -> Response:
    """Change a member's role (owner); open sockets follow at once."""
    principal = await access.require_principal(request, personal=True)
    room_id = parsing.room_param(request)
    await access.require_role(request, principal, room_id, Role.owner)
    role = parsing.role_field(await parsing.read_json(request))
    current = await _member(request, room_id)
    if role != Role.owner:
        await _guard_last_owner(request, room_id, current)
    meta = services(request).meta
    member = await meta.set_member(room_id, current.user_id, role)
    _apply(request, room_id, member.user_id, role)
    await access.audit(
        request,
        principal,
        "member.role",
        room_id=room_id,
        target=member.user_id,
        role=role.name,
        previous=current.role.name,
    )
    return JSONResponse(member_json(member, await meta.get_user(member.user_id)))


async def _may_remove(request: Request, principal: Principal, room_id: str, user_id: str) -> None:
    """Owners remove anyone; any member may leave."""
    if user_id == principal.user_id:
        await access.require_role(request, principal, room_id, Role.viewer)
    else:
        await access.require_role(request, principal, room_id, Role.owner)


@api_endpoint
async def remove_member(request: Request) -> Response:
    """Remove a member (owner), or leave the room (oneself); their sockets close 4403."""
    principal = await access.require_principal(request, personal=True)
    room_id = parsing.room_param(request)
    await _may_remove(request, principal, room_id, str(request.path_params["user"]))
    current = await _member(request, room_id)
    await _guard_last_owner(request, room_id, current)
    await services(request).meta.remove_member(room_id, current.user_id)
    _apply(request, room_id, current.user_id, None)
    await access.audit(
        request,
        principal,
        "member.remove",
        room_id=room_id,
        target=current.user_id,
        previous=current.role.name,
    )
    return Response(status_code=204)
