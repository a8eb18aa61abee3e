"""Who may call the API, and the audit trail of what they did.

Every handler starts with :func:`require_principal` (credentials, CSRF for cookie calls, and
whether a room-narrowed credential may act for the user at large), then :func:`require_role`
for a room, whose answer comes only from ``collab.auth.policy`` (the one door every path
goes through). :func:`audit` records a change with its actor and address.

A caller who is not a member of a room gets the same answer whether the room exists or not
(404 ``not_found``, as for a room that does not exist), so room ids cannot be probed; a member
whose role is too low gets 403. Operations that create things spend a token of the caller's
per-user bucket for their kind first (:func:`spend`, wired from the ``OPERATIONS`` table):
429 with ``Retry-After`` past it. What never happens in a direct message (adding members,
invites, room tokens...) is refused there with 409 by :func:`require_role_outside_dm`.
"""

from __future__ import annotations

import time
from typing import Any

from starlette.requests import Request

from collab.auth.authenticate import authenticate
from collab.auth.origin import origin_allowed
from collab.auth.policy import room_role
from collab.auth.principal import Principal
from collab.errors import Conflict, Forbidden, NotFound, Rate, TooManyRequests, Unauthorized
from collab.meta import AuditEvent, Role
from collab.services import services

UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
# Credentials that stand for the user themself; room tokens and tickets are narrowed to a room.
PERSONAL_VIA = {"session", "dev", "api_token"}
NO_SUCH_ROOM = "no such room, or not a member of it"
_CALLER = "collab.caller"  # the request scope's key for the authenticated caller


async def caller(request: Request) -> Principal | None:
    """``authenticate`` once per request, however many steps ask: a ticket is single use, and
    an API token is stamped as used on each lookup."""
    if _CALLER not in request.scope:
        request.scope[_CALLER] = await authenticate(request, services(request))
    found: Principal | None = request.scope[_CALLER]
    return found


async def require_principal(request: Request, *, personal: bool = False) -> Principal:
    """The authenticated caller; 401 without credentials, 403 for a cross-site cookie call.

    ``personal``: the call acts for the user at large (their rooms, their tokens), so a room
    token or ticket, which only stands for the user within one room, is refused.
    """
    principal = await caller(request)
    if principal is None:
        raise Unauthorized("credentials required")
    if (
        principal.by_cookie
        and request.method in UNSAFE_METHODS
        and not origin_allowed(request, services(request).settings)
    ):
        raise Forbidden("cross-origin request refused")
    if personal and principal.via not in PERSONAL_VIA:
        raise Forbidden("this credential is limited to one room")
    return principal


_RATE_WHAT = {Rate.chat: "chat writes", Rate.search: "searches"}


def _created(kind: Rate) -> str:
    return f"{kind.value.replace('_', ' ')} created"


async def spend(request: Request, kind: Rate) -> None:
    """Take one of the caller's tokens for creating a ``kind``; 429 when there is none.

    Anonymous callers spend nothing here: the handler refuses them (401) right after.
    """
    principal = await caller(request)
    if principal is None:
        return
    wait = await services(request).api_limits[kind].take(principal.user_id)
    if wait > 0:
        raise TooManyRequests(kind, wait, f"too many {_RATE_WHAT.get(kind) or _created(kind)}")


async def require_role(request: Request, principal: Principal, room_id: str, minimum: Role) -> Role:
    """The caller's role in the room (via the policy every door uses), at least ``minimum``.

    Not a member (or no such room): 404, the same answer either way. Site admins, who may see
    every room, learn that a room does not exist from the policy's own NotFound.
    """
    shared = services(request)
    try:
        role = await room_role(shared.meta, shared.settings, principal, room_id)
    except NotFound:
        raise NotFound(NO_SUCH_ROOM) from None
    except Forbidden:
        if principal.allows(room_id):  # a member of no role here, not a token for elsewhere
            raise NotFound(NO_SUCH_ROOM) from None
        raise
    if role < minimum:
        raise Forbidden(f"requires the {minimum.name} role")
    return role


async def require_role_outside_dm(
    request: Request, principal: Principal, room_id: str, minimum: Role, refusal: str
) -> Role:
    """As :func:`require_role`, for what never happens in a direct message: there, any member
    (and a site admin) gets 409 ``refusal``, whatever their role (a DM has no owner)."""
    role = await require_role(request, principal, room_id, Role.viewer)
    room = await services(request).meta.get_room(room_id)
    if room is not None and room.is_dm:
        raise Conflict(refusal)
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
    shared = services(request)
    recorded = event(request, actor, action, room_id, target, **detail)
    await shared.meta.record(recorded)
    await shared.webhooks.audited(recorded)  # membership changes are webhook events too


def event(
    request: Request,
    actor: Principal | None,
    action: str,
    room_id: str | None = None,
    target: str | None = None,
    **detail: Any,
) -> AuditEvent:
    """The audit record of an action of this request (for a store step that records it)."""
    return AuditEvent(
        at=time.time(),
        action=action,
        actor=actor.user_id if actor else None,
        room_id=room_id,
        target=target,
        detail=detail,
        ip=request.client.host if request.client else None,
    )
