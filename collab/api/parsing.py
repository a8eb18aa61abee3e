"""What every /api/v1 handler needs: the principal, its role, CSRF, JSON bodies, pagination.

Handlers are wrapped by :func:`api_endpoint`, which turns any exception into the JSON error of
``collab.api.errors`` (the one mapping). Room roles come only from ``collab.auth.policy``.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from collab.auth.authenticate import authenticate
from collab.auth.origin import origin_allowed
from collab.auth.policy import room_role
from collab.auth.principal import Principal
from collab.errors import BadName, BadRequest, Forbidden, Unauthorized, error_response
from collab.meta.base import AuditEvent, MetaStore, Role
from collab.names import is_valid_name
from collab.rooms import RoomRegistry
from collab.settings import Settings
from collab.store.base import DocumentStore

Handler = Callable[[Request], Awaitable[Response]]
T = TypeVar("T")

UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
# Credentials that stand for the user themself; room tokens and tickets are narrowed to a room.
PERSONAL_VIA = {"session", "dev", "api_token"}
MAX_BODY = 64 * 1024
DEFAULT_LIMIT = 50
MAX_LIMIT = 200


def api_endpoint(handler: Handler) -> Handler:
    """Wrap a handler so every exception becomes its JSON error response."""

    @functools.wraps(handler)
    async def wrapped(request: Request) -> Response:
        try:
            return await handler(request)
        except Exception as exc:
            return error_response(exc)

    return wrapped


def meta(request: Request) -> MetaStore:
    store: MetaStore = request.app.state.meta
    return store


def store(request: Request) -> DocumentStore:
    docs: DocumentStore = request.app.state.store
    return docs


def registry(request: Request) -> RoomRegistry:
    loaded: RoomRegistry = request.app.state.registry
    return loaded


def settings(request: Request) -> Settings:
    current: Settings = request.app.state.settings
    return current


async def require_principal(request: Request, *, personal: bool = False) -> Principal:
    """The authenticated caller; 401 without credentials, 403 for a cross-site cookie call.

    ``personal``: the call acts for the user at large (their rooms, their tokens), so a room
    token or ticket, which only stands for the user within one room, is refused.
    """
    principal = await authenticate(request)
    if principal is None:
        raise Unauthorized("credentials required")
    if (
        principal.by_cookie
        and request.method in UNSAFE_METHODS
        and not origin_allowed(request, settings(request))
    ):
        raise Forbidden("cross-origin request refused")
    if personal and principal.via not in PERSONAL_VIA:
        raise Forbidden("this credential is limited to one room")
    return principal


def room_param(request: Request) -> str:
    room_id = str(request.path_params["room"])
    if not is_valid_name(room_id):
        raise BadName("bad room name")
    return room_id


async def require_role(request: Request, principal: Principal, room_id: str, minimum: Role) -> Role:
    """The caller's role in the room (via the policy every door uses), at least ``minimum``."""
    role = await room_role(meta(request), settings(request), principal, room_id)
    if role < minimum:
        raise Forbidden(f"requires the {minimum.name} role")
    return role


async def read_json(request: Request) -> dict[str, Any]:
    """The request's JSON object (an empty body is ``{}``); 400 when malformed or too big."""
    length = request.headers.get("content-length")
    if length is not None and (not length.isdigit() or int(length) > MAX_BODY):
        raise BadRequest("request body too large")
    body = await request.body()
    if len(body) > MAX_BODY:
        raise BadRequest("request body too large")
    if not body.strip():
        return {}
    try:
        value = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("malformed JSON body") from None
    if not isinstance(value, dict):
        raise BadRequest("the body must be a JSON object")
    return value


def get_field(body: dict[str, Any], name: str, kind: type[T], default: T | None = None) -> T | None:
    value = body.get(name, default)
    if value is None:
        return None
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        raise BadRequest(f"{name!r} must be a {kind.__name__}")
    return value


def role_field(body: dict[str, Any], name: str = "role", default: Role | None = None) -> Role:
    raw = get_field(body, name, str)
    if raw is None:
        if default is None:
            raise BadRequest(f"{name!r} is required")
        return default
    try:
        return Role.parse(raw)
    except ValueError:
        raise BadRequest(f"unknown role {raw[:40]!r}") from None


def paginate(
    request: Request, items: Sequence[T], key: Callable[[T], list[Any]]
) -> tuple[list[T], str | None]:
    """Cursor pagination over items already sorted by ``key``: ``?cursor=&limit=``.

    The cursor is the opaque key of the last item returned, so pages stay stable while items
    are added or removed elsewhere in the list.
    """
    limit = int_param(request, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    after = decode_cursor(request.query_params.get("cursor"))
    if after is not None:
        try:
            items = [item for item in items if key(item) > after]
        except TypeError:
            raise BadRequest("bad cursor") from None
    page = list(items[:limit])
    more = len(items) > limit
    return page, encode_cursor(key(page[-1])) if more and page else None


def int_param(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"{name!r} must be an integer") from None
    if not low <= value <= high:
        raise BadRequest(f"{name!r} must be between {low} and {high}")
    return value


def encode_cursor(key: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> list[Any] | None:
    if not cursor:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise BadRequest("bad cursor") from None
    if not isinstance(value, list):
        raise BadRequest("bad cursor")
    return value


def page_response(items: list[dict[str, Any]], next_cursor: str | None) -> JSONResponse:
    return JSONResponse({"items": items, "next_cursor": next_cursor})


async def audit(
    request: Request,
    actor: Principal | None,
    action: str,
    *,
    room_id: str | None = None,
    target: str | None = None,
    **detail: Any,
) -> None:
    await meta(request).record(
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
