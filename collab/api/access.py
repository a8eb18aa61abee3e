"""Who may call the API, and the audit trail of what they did.

Every handler starts with :func:`require_principal` (credentials, CSRF for cookie calls, and
whether a room-narrowed credential may act for the user at large), then :func:`require_role`
for a room, whose answer comes only from ``collab.auth.policy`` (the one door every path
goes through). :func:`audit` records a change with its actor and address.
"""

from __future__ import annotations

import time
from typing import Any

from starlette.requests import Request

from collab.auth.authenticate import authenticate
from collab.auth.origin import origin_allowed
from collab.auth.policy import room_role
from collab.auth.principal import Principal
from collab.errors import Forbidden, Unauthorized
from collab.meta import AuditEvent, Role
from collab.services import services

UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
# Credentials that stand for the user themself; room tokens and tickets are narrowed to a room.
PERSONAL_VIA = {"session", "dev", "api_token"}


async def require_principal(request: Request, *, personal: bool = False) -> Principal:
    """The authenticated caller; 401 without credentials, 403 for a cross-site cookie call.

    ``personal``: the call acts for the user at large (their rooms, their tokens), so a room
    token or ticket, which only stands for the user within one room, is refused.
    """
    shared = services(request)
    principal = await authenticate(request, shared)
    if principal is None:
        raise Unauthorized("credentials required")
    if (
        principal.by_cookie
        and request.method in UNSAFE_METHODS
        and not origin_allowed(request, shared.settings)
    ):
        raise Forbidden("cross-origin request refused")
    if personal and principal.via not in PERSONAL_VIA:
        raise Forbidden("this credential is limited to one room")
    return principal


async def require_role(request: Request, principal: Principal, room_id: str, minimum: Role) -> Role:
    """The caller's role in the room (via the policy every door uses), at least ``minimum``."""
    shared = services(request)
    role = await room_role(shared.meta, shared.settings, principal, room_id)
    if role < minimum:
        raise Forbidden(f"requires the {minimum.name} role")
    return role


async def audit(
    request: Request,
    actor: Principal | None,
    action: str,
    *,
    room_id: str | None = None,
    target: str | None = None,
    **detail: Any,
) -> None:
    await services(request).meta.record(
        AuditEvent(
            at=time.time(),
            action=action,
            actor=actor.user_id if actor else None,
            room_id=room_id,
            target=target,
            detail=detail,
            ip=request.client.host if request.client else None,
        )
    )
