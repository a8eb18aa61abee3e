"""``/me`` (``PATCH /me``: one's handle and settings) and the site admin's user switch
(``PATCH /users/{user}``: disable / enable).

A handle (``collab.meta.handles``) is lower-case, unique whatever its case, and never one of
the reserved ``room``, ``here``, ``channel``, ``everyone`` (nor one of them with a trailing
``.``, ``_`` or ``-``): a malformed or reserved one is 400, one someone else has 409; a change
is audited (``user.handle``). ``private_read_markers`` hides the user's read markers from
the other members (the chat's receipts read it).

Disabling a user revokes their sessions and closes every socket they hold (4401); their API
tokens and room tokens stop working at once too, because every credential is checked against
a live, enabled user.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from collab.api import access, parsing
from collab.api.handler import api_endpoint
from collab.auth.principal import Principal
from collab.errors import BadRequest, Forbidden, NotFound
from collab.meta import User
from collab.meta.handles import BadHandle, parse_handle
from collab.services import services

_ME_FIELDS = {"handle", "private_read_markers"}


def user_ref(user: User) -> dict[str, Any]:
    """A user as others see them beside a room or message: id, display name, handle."""
    return {"id": user.id, "name": user.name, "handle": user.handle}


def user_json(user: User) -> dict[str, Any]:
    return {
        "id": user.id,
        "name": user.name,
        "handle": user.handle,
        "email": user.email,
        "email_verified": user.email_verified,
        "disabled": user.disabled,
        "created_at": user.created_at,
    }


@api_endpoint
async def me(request: Request) -> Response:
    """Who the caller is, and how they authenticated."""
    principal = await access.require_principal(request)
    user = await services(request).meta.get_user(principal.user_id)
    assert user is not None  # authenticate() only returns live users
    return _me_response(principal, user)


def _me_response(principal: Principal, user: User) -> Response:
    return JSONResponse(
        {
            **user_json(user),
            "private_read_markers": user.private_read_markers,
            "is_admin": principal.is_admin,
            "via": principal.via,
            "room_scope": principal.room_scope,
            "role_ceiling": principal.role_ceiling.name if principal.role_ceiling else None,
        }
    )


@api_endpoint
async def update_me(request: Request) -> Response:
    """Change one's handle, or one's settings (private_read_markers)."""
    principal = await access.require_principal(request, personal=True)
    body = await parsing.read_json(request)
    unknown = sorted(set(body) - _ME_FIELDS)
    if unknown:
        raise BadRequest(
            f"unknown field {unknown[0][:40]!r}: give 'handle' or 'private_read_markers'"
        )
    raw = parsing.get_field(body, "handle", str)
    private = parsing.get_field(body, "private_read_markers", bool)
    if raw is None and private is None:
        raise BadRequest("give 'handle' or 'private_read_markers'")
    try:
        handle = None if raw is None else parse_handle(raw)
    except BadHandle as exc:
        raise BadRequest(str(exc)) from None
    meta = services(request).meta
    user = await meta.get_user(principal.user_id)
    assert user is not None  # authenticate() only returns live users
    if handle is not None and handle != user.handle:
        await meta.set_handle(user.id, handle)  # 409 when someone has it
        await access.audit(
            request, principal, "user.handle", target=user.id, handle=handle, previous=user.handle
        )
    if private is not None and private != user.private_read_markers:
        await meta.set_private_read_markers(user.id, private)
        # Out of (or back into) the `reads` of every loaded chat doc of theirs, now (and, with
        # other nodes, a `reads` notice has them do the same: collab.chat.readnodes).
        await services(request).chat.show_read_markers(user.id, public=not private)
        await access.audit(
            request, principal, "user.private_read_markers", target=user.id, private=private
        )
    updated = await meta.get_user(user.id)
    assert updated is not None
    return _me_response(principal, updated)


@api_endpoint
async def update_user(request: Request) -> Response:
    """Disable or enable a user (site admins)."""
    principal = await access.require_principal(request, personal=True)
    if not principal.is_admin:
        raise Forbidden("site admins only")
    user_id = str(request.path_params["user"])
    disabled = parsing.get_field(await parsing.read_json(request), "disabled", bool)
    if disabled is None:
        raise BadRequest("'disabled' (true or false) is required")
    meta = services(request).meta
    if await meta.get_user(user_id) is None:
        raise NotFound("no such user")
    if disabled and user_id == principal.user_id:
        raise BadRequest("admins cannot disable themselves")
    await meta.set_user_disabled(user_id, disabled)
    if disabled:
        await meta.revoke_user_sessions(user_id)
        services(request).registry.revoke(
            4401,
            "user disabled",
            lambda peer: peer.principal is not None and peer.principal.user_id == user_id,
            user=user_id,
        )
    action = "user.disable" if disabled else "user.enable"
    await access.audit(request, principal, action, target=user_id)
    user = await meta.get_user(user_id)
    assert user is not None
    return JSONResponse(user_json(user))
