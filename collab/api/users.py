"""``/me`` and the site admin's user switch (``PATCH /users/{user}``: disable / enable).

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
from collab.errors import BadRequest, Forbidden, NotFound
from collab.meta import User
from collab.services import services


def user_json(user: User) -> dict[str, Any]:
    return {
        "id": user.id,
        "name": user.name,
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
    return JSONResponse(
        {
            **user_json(user),
            "is_admin": principal.is_admin,
            "via": principal.via,
            "room_scope": principal.room_scope,
            "role_ceiling": principal.role_ceiling.name if principal.role_ceiling else None,
        }
    )


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
        services(request).registry.close_matching(
            4401,
            "user disabled",
            lambda peer: peer.principal is not None and peer.principal.user_id == user_id,
        )
    action = "user.disable" if disabled else "user.enable"
    await access.audit(request, principal, action, target=user_id)
    user = await meta.get_user(user_id)
    assert user is not None
    return JSONResponse(user_json(user))
