"""Invite links: a code that grants a role in a room once, until it expires.

An invite may be bound to an email address; then only a user whose identity provider
*verified* that address may accept it (anyone can type any address into a profile). The
binding lives in the MetaStore's expiring cache under the code's digest, for the invite's
lifetime, so neither the code nor the binding outlives the invite.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from collab.api import access, parsing
from collab.api.handler import api_endpoint
from collab.errors import BadRequest, Forbidden, NotFound
from collab.meta import Role, digest
from collab.services import services

DEFAULT_TTL = 7 * 24 * 3600.0
MAX_TTL = 30 * 24 * 3600.0
_EMAIL_KEY = "invite-email:"


def _invite_url(request: Request, code: str) -> str:
    base = services(request).settings.public_url or str(request.base_url)
    return f"{base.rstrip('/')}/invite/{code}"


@api_endpoint
async def create_invite(request: Request) -> Response:
    """Create an invite link for a role (owner); the code is shown once."""
    principal = await access.require_principal(request, personal=True)
    room_id = parsing.room_param(request)
    await access.require_role(request, principal, room_id, Role.owner)
    body = await parsing.read_json(request)
    role = parsing.role_field(body, default=Role.editor)
    ttl = parsing.get_field(body, "ttl", float, DEFAULT_TTL)
    assert ttl is not None
    if not 0 < ttl <= MAX_TTL:
        raise BadRequest(f"'ttl' must be between 1 and {int(MAX_TTL)} seconds")
    email = parsing.get_field(body, "email", str)
    if email is not None and ("@" not in email or len(email) > 320):
        raise BadRequest("'email' is not an email address")
    meta = services(request).meta
    invite, code = await meta.create_invite(room_id, role, principal.user_id, ttl)
    if email is not None:
        await meta.cache_set(_EMAIL_KEY + digest(code), email.strip(), ttl)
    await access.audit(
        request,
        principal,
        "invite.create",
        room_id=room_id,
        target=invite.id,
        role=role.name,
        email_bound=email is not None,
    )
    return JSONResponse(
        {
            "id": invite.id,
            "room": room_id,
            "role": role.name,
            "expires_at": invite.expires_at,
            "email": email,
            "code": code,
            "url": _invite_url(request, code),
        },
        status_code=201,
    )


@api_endpoint
async def accept_invite(request: Request) -> Response:
    """Accept an invite: the caller joins the room with its role (never lowering theirs)."""
    principal = await access.require_principal(request, personal=True)
    code = str(request.path_params["code"])
    meta = services(request).meta
    bound = await meta.cache_get(_EMAIL_KEY + digest(code))
    if bound is not None and (
        principal.email is None or principal.email.casefold() != bound.casefold()
    ):
        raise Forbidden("this invite is for another (verified) email address")
    try:
        member = await meta.redeem_invite(code, principal.user_id)
    except NotFound:
        raise NotFound("unknown, used or expired invite") from None
    await meta.cache_delete(_EMAIL_KEY + digest(code))
    services(request).registry.apply_member_role(member.room_id, member.user_id, member.role)
    await access.audit(
        request,
        principal,
        "invite.accept",
        room_id=member.room_id,
        target=principal.user_id,
        role=member.role.name,
    )
    return JSONResponse({"room": member.room_id, "role": member.role.name})
