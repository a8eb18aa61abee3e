"""Reading an /api/v1 request: bodies (streamed, capped), JSON, typed fields, roles, path and
query parameters, and cursor pagination. Anything malformed is a ``BadRequest`` (400) or
``BadName`` (400); a body past its cap a ``BodyTooLarge`` (413), one that stops arriving a
``BodyTimeout`` (408).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, TypeVar

from starlette.requests import Request
from starlette.responses import JSONResponse

from collab.errors import BadName, BadRequest, BodyTimeout, BodyTooLarge
from collab.meta import Role
from collab.names import is_valid_name
from collab.services import services
from collab.wire.strictjson import strict_json

T = TypeVar("T")

MAX_BODY = 64 * 1024
MAX_DEPTH = 32  # nesting of a request's JSON body
DEFAULT_LIMIT = 50
MAX_LIMIT = 200


def room_param(request: Request) -> str:
    room_id = str(request.path_params["room"])
    if not is_valid_name(room_id):
        raise BadName("bad room name")
    return room_id


async def body_chunks(request: Request) -> AsyncIterator[bytes]:
    """The request body's chunks as they arrive; ``BodyTimeout`` (408, the connection closed)
    once none arrives for ``body_timeout`` seconds, so a trickled body holds nothing for long.
    """
    idle = services(request).settings.body_timeout
    chunks = request.stream()
    while True:
        try:
            async with asyncio.timeout(idle):
                chunk = await anext(chunks)
        except StopAsyncIteration:
            return
        except TimeoutError:
            raise BodyTimeout(f"no byte of the request body for {idle:g} seconds") from None
        yield chunk


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, read as it streams in and refused (413) once past ``limit`` bytes.

    The one body reader of every route: a declared Content-Length past the cap is refused
    before a byte is read, and a chunked body (no length) is counted chunk by chunk, so no
    body grows the server past ``limit`` whatever its framing. The 413 closes the connection
    (``collab.errors.BodyTooLarge``) instead of reading the rest.
    """
    length = request.headers.get("content-length")
    if length is not None:
        if not (length.isascii() and length.isdigit()):
            raise BadRequest("bad Content-Length")
        if len(length) > 18 or int(length) > limit:  # 18 digits: int() of any length is slow
            raise BodyTooLarge()
    body = bytearray()
    async for chunk in body_chunks(request):
        if len(body) + len(chunk) > limit:
            raise BodyTooLarge()
        body += chunk
    return bytes(body)


async def read_json(request: Request) -> dict[str, Any]:
    """The request's JSON object (an empty body is ``{}``); 400 when malformed, 413 past
    ``MAX_BODY``."""
    body = await read_body(request, MAX_BODY)
    if not body.strip():
        return {}
    try:
        # Strict: no NaN, no lone surrogate escape (a string no store or client can take).
        value = strict_json(body.decode("utf-8"), MAX_DEPTH, "the body")
    except (ValueError, UnicodeDecodeError):  # MalformedInput is a ValueError
        raise BadRequest("malformed JSON body") from None
    if not isinstance(value, dict):
        raise BadRequest("the body must be a JSON object")
    return value


def get_field(body: dict[str, Any], name: str, kind: type[T], default: T | None = None) -> T | None:
    value = body.get(name, default)
    if value is None:
        return None
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        try:
            value = float(value)
        except OverflowError:  # an integer past any float
            raise BadRequest(f"{name!r} is out of range") from None
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
        text = base64.urlsafe_b64decode(padded.encode()).decode("utf-8")
        value = strict_json(text, MAX_DEPTH, "the cursor")  # nesting bounded, as for bodies
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise BadRequest("bad cursor") from None
    if not isinstance(value, list):
        raise BadRequest("bad cursor")
    return value


def page_response(items: list[dict[str, Any]], next_cursor: str | None) -> JSONResponse:
    return JSONResponse({"items": items, "next_cursor": next_cursor})
