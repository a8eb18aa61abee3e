"""The error tree, and the one place that maps it to WebSocket close codes and HTTP responses.

    class                      close http code                 meaning
    CollabError                1011  -                         server bug (the default)
    +-- Refusal                4403  403  forbidden            a client asked for what it may not
    |   +-- BadName            4400  400  bad_name             malformed room or doc name
    |   +-- BadRequest         -     400  bad_request          malformed JSON, role, field
    |   +-- Unauthorized       4401  401  unauthorized         missing, expired, forged credentials
    |   +-- TokenExpired       4001  401  token_expired        an open socket's room token ran out
    |   +-- Forbidden          4403  403  forbidden            not a member, role too low
    |   |   +-- LimitReached   4403  403  limit_reached        a cap: rooms per user, docs per room
    |   +-- NotFound           4404  404  not_found            no such room, doc, user or record
    |   +-- MethodNotAllowed   -     405  method_not_allowed   a known API path, another method
    |   +-- Conflict           -     409  conflict             exists already; the last owner
    |   +-- TooManyRequests    -     429  rate_limited         a per-user creation rate; failed
    |                                                          credentials per address
    |   +-- GenerationMismatch 4409  409  generation_mismatch  the doc was reset or restored
    |   +-- DocTooLarge        4413  413  too_large            past max_doc_size (quota doc_size)
    |   +-- MessageTooLong     -     413  too_large            chat text past max_message_length
    |   +-- BodyTooLarge       -     413  body_too_large       a request body past its cap
    |   |   +-- FileTooLarge   -     413  too_large            an upload past max_upload_size
    |   +-- BodyTimeout        -     408  body_timeout         no byte of a body for body_timeout
    |   +-- LoginRefused       -     400* (its own)            a login that does not complete
    +-- BadInput               1007  -                         the bytes themselves are wrong
    |   +-- ProtocolViolation  1002  -                         framing: bad varint, truncated
    |   +-- UnsupportedData    1003  -                         a text frame
    |   +-- HostileInput       1007  -                         outside the grammar, over a cap
    |   +-- MessageTooBig      1009  -                         a collab message past its size cap
    +-- Overloaded             1013  -                         slow consumer, pending budget
    +-- RateLimited            1008  -                         over its message/byte rate too long
    +-- RoomFailed             1011  -                         doc could not be loaded or committed

``-``: the error never travels that way (an HTTP-only error has no close code, a socket-only one
no status); if it does anyway, that is a server bug: 1011, or HTTP 500 ``internal``. LoginRefused
carries its code and status per instance (``invalid_state`` 400, ``provider_unavailable`` 502...).
An error raised at a configured cap carries ``quota`` (a :class:`Quota`), which metrics count:
never the reason text; one raised at a per-user rate carries ``rate`` (a :class:`Rate`) and
``retry_after``, answered as the ``Retry-After`` header (an address over its failed-credential
budget is refused with ``rate`` None: ``collab.auth.failures`` counts those). Close reasons and
messages are short and never carry payload bytes, tokens or message text.

:func:`close_code_for` is the one mapping to a close code, :func:`error_response` the one mapping
to an HTTP response, and :func:`json_error` the one builder of the JSON error body
``{"error": {"code": ..., "message": ...}}`` that the API, the login routes and /metrics answer.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import math

from starlette.responses import JSONResponse

log = logging.getLogger("collab.errors")


class Quota(enum.StrEnum):
    """The caps a refusal can be raised at, configured or fixed (the ``quota`` metric label)."""

    doc_size = "doc_size"  # max_doc_size
    docs_per_room = "docs_per_room"  # max_docs_per_room
    rooms_per_user = "rooms_per_user"  # max_rooms_per_user
    message_length = "message_length"  # max_message_length
    upload_size = "upload_size"  # max_upload_size
    room_files = "room_files"  # max_room_files_bytes
    reactions_per_message = "reactions_per_message"  # distinct emoji (collab.meta.MAX_REACTIONS)


class Rate(enum.StrEnum):
    """The per-user rates of the API: of creating things, of chat writes, of searches (the
    ``kind`` metric label)."""

    rooms = "rooms"
    dms = "dms"  # opening a direct message
    profile = "profile"  # changing one's handle or settings (PATCH /me)
    members = "members"  # adding one, or inviting an email address
    invites = "invites"
    room_tokens = "room_tokens"
    tickets = "tickets"
    api_tokens = "api_tokens"
    chat = "chat"  # chat writes (posts, edits, deletes, reactions, read markers)
    files = "files"  # file uploads
    docs = "docs"  # document metadata writes (create, rename)
    webhooks = "webhooks"  # outgoing webhook endpoints registered, deliveries redone
    search = "search"  # searches (GET /api/v1/search)


class CollabError(Exception):
    close_code: int | None = 1011
    http_status: int | None = None
    code = "internal"  # the API's stable error code
    reason = "internal error"
    quota: Quota | None = None

    def __init__(self, reason: str | None = None) -> None:
        super().__init__(reason or self.reason)
        if reason:
            self.reason = reason


class Refusal(CollabError):
    close_code: int | None = 4403
    http_status: int | None = 403
    code = "forbidden"
    reason = "forbidden"


class BadName(Refusal):
    close_code = 4400
    http_status = 400
    code = "bad_name"
    reason = "bad room or document name"


class BadRequest(Refusal):
    close_code = None
    http_status = 400
    code = "bad_request"
    reason = "bad request"


class Unauthorized(Refusal):
    close_code = 4401
    http_status = 401
    code = "unauthorized"
    reason = "unauthorized"


class TokenExpired(Refusal):
    """The room token behind an open socket expired. Its close code is outside 4400-4499, which
    y-websocket >= 3.1 treats as final: the client reconnects with its current
    ``provider.params``, so one that renewed its token there carries on (DESIGN.md, Identity)."""

    close_code = 4001
    http_status = 401
    code = "token_expired"
    reason = "token expired: reconnect with a fresh one"


class Forbidden(Refusal):
    close_code = 4403
    http_status = 403
    code = "forbidden"
    reason = "forbidden"


class LimitReached(Forbidden):
    code = "limit_reached"
    reason = "limit reached"

    def __init__(self, quota: Quota, reason: str | None = None) -> None:
        super().__init__(reason)
        self.quota = quota


class NotFound(Refusal):
    close_code = 4404
    http_status = 404
    code = "not_found"
    reason = "not found"


class MethodNotAllowed(Refusal):
    close_code = None
    http_status = 405
    code = "method_not_allowed"
    reason = "method not allowed"


class Conflict(Refusal):
    close_code = None
    http_status = 409
    code = "conflict"
    reason = "conflict"


class TooManyRequests(Refusal):
    close_code = None
    http_status = 429
    code = "rate_limited"
    reason = "too many requests: retry later"

    def __init__(self, rate: Rate | None, retry_after: float, reason: str | None = None) -> None:
        super().__init__(reason)
        self.rate = rate  # None: not a creation rate (failed credentials per address)
        self.retry_after = retry_after


class GenerationMismatch(Refusal):
    close_code = 4409
    http_status = 409
    code = "generation_mismatch"
    reason = "document was reset: reload"


class DocTooLarge(Refusal):
    close_code = 4413
    http_status = 413
    code = "too_large"
    reason = "document too large"
    quota = Quota.doc_size


class MessageTooLong(Refusal):
    """A chat message's text past ``max_message_length`` characters."""

    close_code = None
    http_status = 413
    code = "too_large"
    reason = "message too long"
    quota = Quota.message_length


class BodyTooLarge(Refusal):
    """A request body past its route's cap (``collab.api.parsing.read_body``); the answer
    closes the connection, so the client stops sending the rest."""

    close_code = None
    http_status = 413
    code = "body_too_large"
    reason = "request body too large"


class FileTooLarge(BodyTooLarge):
    """An upload past ``max_upload_size``, refused while it streams in (the partial file is
    removed); the answer closes the connection, as for any body past its cap."""

    code = "too_large"
    reason = "file too large"
    quota = Quota.upload_size


class BodyTimeout(Refusal):
    """A request body that stopped arriving: no byte for ``body_timeout`` seconds (a trickled
    upload holding a connection and a temporary file). The answer closes the connection."""

    close_code = None
    http_status = 408
    code = "body_timeout"
    reason = "request body timed out"


class LoginRefused(Refusal):
    """A login that does not complete; its code and status name why (OIDC callback checks)."""

    close_code = None
    http_status = 400
    code = "login_refused"
    reason = "login refused"

    def __init__(self, code: str, reason: str, http_status: int = 400) -> None:
        super().__init__(reason)
        self.code = code
        self.http_status = http_status


class BadInput(CollabError):
    close_code = 1007
    reason = "invalid data"


class ProtocolViolation(BadInput):
    close_code = 1002
    reason = "protocol error"


class UnsupportedData(BadInput):
    close_code = 1003
    reason = "binary frames only"


class HostileInput(BadInput):
    close_code = 1007
    reason = "invalid data"


class MessageTooBig(BadInput):
    """A collab message (a chat request, type 101) longer than its cap; frames past
    ``ws_max_size`` get the same code from the WebSocket library itself."""

    close_code = 1009
    reason = "message too big"


class Overloaded(CollabError):
    close_code = 1013
    reason = "try again later"


class RateLimited(CollabError):
    close_code = 1008
    reason = "over the rate limit for too long"


class RoomFailed(CollabError):
    close_code = 1011
    reason = "document unavailable"


def must_propagate(exc: BaseException) -> bool:
    """True for the BaseExceptions a handler must re-raise (cancellation, exit).

    pycrdt raises ``pyo3_runtime.PanicException``, a BaseException, when yrs panics: code that
    talks to yrs catches BaseException and re-raises only these.
    """
    return isinstance(exc, asyncio.CancelledError | KeyboardInterrupt | SystemExit | GeneratorExit)


def close_code_for(exc: BaseException) -> tuple[int, str]:
    """(close code, reason) for any exception; unknown ones are server bugs (1011)."""
    if isinstance(exc, CollabError) and exc.close_code is not None:
        return exc.close_code, exc.reason[:120]
    return 1011, "internal error"


def http_error_for(exc: BaseException) -> tuple[int, str, str] | None:
    """(status, code, message) of a client-facing error; None for a server bug (500)."""
    if isinstance(exc, CollabError) and exc.http_status is not None:
        return exc.http_status, exc.code, exc.reason[:200]
    return None


def error_body(code: str, message: str) -> dict[str, dict[str, str]]:
    return {"error": {"code": code, "message": message}}


def json_error(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    """The JSON error every HTTP refusal answers: ``{"error": {"code", "message"}}``."""
    return JSONResponse(error_body(code, message), status_code=status, headers=headers)


def error_response(exc: BaseException) -> JSONResponse:
    """The HTTP answer to any exception: its status and code, or a logged 500 ``internal``."""
    mapped = http_error_for(exc)
    if mapped is None:
        log.error("request failed", exc_info=exc)
        return json_error(500, "internal", "internal error")
    if isinstance(exc, TooManyRequests):
        return json_error(*mapped, headers={"Retry-After": retry_after_header(exc.retry_after)})
    if isinstance(exc, BodyTooLarge | BodyTimeout):
        # An unread body stays on the connection: close it rather than read the rest.
        return json_error(*mapped, headers={"connection": "close"})
    return json_error(*mapped)


def retry_after_header(seconds: float) -> str:
    """A ``Retry-After`` value: whole seconds, rounded up, at least 1."""
    return str(max(1, math.ceil(seconds)))
