"""Invite links: a code that grants a role in a room once, until it expires or ends.

An invite grants at most what its creator may grant *when it is accepted*: its creator must
still be an owner of the room (or a site admin), checked in the same step that uses it, and
demoting or removing a member voids the invites they created. Owners list a room's invites
(never their codes: only digests are stored) and revoke one; both are audited. An invite lives
at most ``MAX_TTL`` (7 days).

An invite may be bound to an email address; then only a user whose identity provider
*verified* that address may accept it (anyone can type any address into a profile), by its
code or from their list of invitations (``collab.api.my_invites``).

A direct message takes no invites: creating one is 409, and so is accepting one (the store
refuses to add a third member, whatever got the invite there).
"""

from __future__ import annotations

import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from collab.api import access, parsing
from collab.api.handler import api_endpoint
from collab.auth.admins import is_admin
from collab.auth.principal import Principal
from collab.errors import BadRequest, Forbidden, NotFound
from collab.meta import DM_MEMBERS, Invite, Member, Role
from collab.meta.invites import same_email
from collab.services import services

DEFAULT_TTL = 7 * 24 * 3600.0
MAX_TTL = 7 * 24 * 3600.0
MAX_EMAIL = 320
GONE = "unknown, used or expired invite"


def invite_json(invite: Invite, now: float) -> dict[str, Any]:
    """An invite as owners and invitees see it: never its code."""
    return {
        "id": invite.id,
        "room": invite.room_id,
        "role": invite.role.name,
        "status": invite.status(now),
        "email": invite.email,
        "created_by": invite.created_by,
        "created_at": invite.created_at,
        "expires_at": invite.expires_at,
        "used_by": invite.used_by,
        "used_at": invite.used_at,
        "closed_at": invite.closed_at,
    }


def email_field(body: dict[str, Any]) -> str | None:
    """The body's ``email``, stripped; 400 unless it looks like an address."""
    email = parsing.get_field(body, "email", str)
    if email is None:
        return None
    email = email.strip()
    if "@" not in email or len(email) > MAX_EMAIL or not email.isprintable():
        raise BadRequest("'email' is not an email address")
    return email


def _invite_url(request: Request, code: str) -> str:
    base = services(request).settings.public_url or str(request.base_url)
    return f"{base.rstrip('/')}/invite/{code}"


@api_endpoint
async def create_invite(request: Request) -> Response:
    """Create an invite link for a role (owner); the code is shown once."""
    principal = await access.require_principal(request, personal=True)
    room_id = parsing.room_param(request)
    await access.require_role_outside_dm(request, principal, room_id, Role.owner, DM_MEMBERS)
    body = await parsing.read_json(request)
    role = parsing.role_field(body, default=Role.editor)
    ttl = parsing.get_field(body, "ttl", float, DEFAULT_TTL)
    assert ttl is not None
    if not 0 < ttl <= MAX_TTL:
        raise BadRequest(f"'ttl' must be between 1 and {int(MAX_TTL)} seconds")
    email = email_field(body)
    meta = services(request).meta
    invite, code = await meta.create_invite(room_id, role, principal.user_id, ttl, email=email)
    await access.audit(
        request,
        principal,
        "invite.create",
        room_id=room_id,
        target=invite.id,
        role=role.name,
        email_bound=email is not None,
    )
    body = {**invite_json(invite, time.time()), "code": code, "url": _invite_url(request, code)}
    return JSONResponse(body, status_code=201)


async def redeem(
    request: Request, principal: Principal, invite: Invite, code: str | None
) -> Member:
    """Use ``invite`` (by its ``code``, or by id for an invitation bound to the caller's email):
    the store re-checks, in the same step, that it is pending and that its creator may still
    grant; then the caller's open sockets follow their new role, and it is audited."""
    shared = services(request)
    meta = shared.meta
    creator = await meta.get_user(invite.created_by)
    admin = creator is not None and is_admin(creator, shared.settings)
    try:
        if code is not None:
            member = await meta.redeem_invite(code, principal.user_id, creator_is_admin=admin)
        else:
            member = await meta.redeem_invite_by_id(
                invite.id, principal.user_id, creator_is_admin=admin
            )
    except NotFound:
        raise NotFound(GONE) from None
    shared.registry.apply_member_role(member.room_id, member.user_id, member.role)
    await access.audit(
        request,
        principal,
        "invite.accept",
        room_id=member.room_id,
        target=principal.user_id,
        role=member.role.name,
        invite=invite.id,
    )
    return member


@api_endpoint
async def accept_invite(request: Request) -> Response:
    """Accept an invite: the caller joins the room with its role (never lowering theirs)."""
    principal = await access.require_principal(request, personal=True)
    code = str(request.path_params["code"])
    invite = await services(request).meta.find_invite(code)
    if invite is None or invite.status(time.time()) != "pending":
        raise NotFound(GONE)
    if invite.email is not None and (not same_email(principal.email, invite.email)):
        raise Forbidden("this invite is for another (verified) email address")
    member = await redeem(request, principal, invite, code)
    return JSONResponse({"room": member.room_id, "role": member.role.name})


@api_endpoint
async def list_invites(request: Request) -> Response:
    """The room's invites, oldest first, every state until purged (owner; never the codes)."""
    principal = await access.require_principal(request, personal=True)
    room_id = parsing.room_param(request)
    await access.require_role(request, principal, room_id, Role.owner)
    invites = await services(request).meta.list_invites(room_id)
    page, cursor = parsing.paginate(request, invites, lambda i: [i.created_at, i.id])
    await access.audit(request, principal, "invite.list", room_id=room_id, count=len(page))
    now = time.time()
    return parsing.page_response([invite_json(i, now) for i in page], cursor)


@api_endpoint
async def revoke_invite(request: Request) -> Response:
    """Revoke a pending invite of the room (owner)."""
    principal = await access.require_principal(request, personal=True)
    room_id = parsing.room_param(request)
    await access.require_role(request, principal, room_id, Role.owner)
    meta = services(request).meta
    invite = await meta.get_invite(str(request.path_params["invite"]))
    if invite is None or invite.room_id != room_id:
        raise NotFound("no such pending invite")
    await meta.close_invite(invite.id, "revoked")
    await access.audit(
        request,
        principal,
        "invite.revoke",
        room_id=room_id,
        target=invite.id,
        role=invite.role.name,
    )
    return Response(status_code=204)
