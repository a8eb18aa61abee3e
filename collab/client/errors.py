"""What a ``collab.client`` call raises: one small tree, by HTTP status and close code alike.

    ClientError                  anything the client gives up on
    +-- ApiError                 the server refused (``status``, ``code``, ``message``)
        +-- BadRequest           400 / close 4400: malformed name, field or body
        +-- Unauthorized         401 / close 4401: credential missing, expired, revoked
        +-- Forbidden            403 / close 4403: not allowed (role too low, removed)
        +-- NotFound             404 / close 4404: no such room, doc or message (or not a member)
        +-- Conflict             409: e.g. editing a deleted message
        +-- TooLarge             413 / close 4413: a text past its cap, a doc full
        +-- RateLimited          429: ``retry_after`` seconds (the client retries these itself)

A socket closed with one of the final codes (4400, 4401, 4403, 4404, 4413) stops reconnecting
and raises its error from the ``async with`` that opened it. Everything else (a restart, 1012,
1011, 1013, a network error) is retried with backoff; 4409 reloads the doc.
"""

from __future__ import annotations

from typing import Any


class ClientError(Exception):
    """The client gave up."""


class ApiError(ClientError):
    status = 0
    close_code: int | None = None

    def __init__(self, message: str, *, code: str = "", status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        if status is not None:
            self.status = status


class BadRequest(ApiError):
    status = 400
    close_code = 4400


class Unauthorized(ApiError):
    status = 401
    close_code = 4401


class Forbidden(ApiError):
    status = 403
    close_code = 4403


class NotFound(ApiError):
    status = 404
    close_code = 4404


class Conflict(ApiError):
    status = 409


class TooLarge(ApiError):
    status = 413
    close_code = 4413


class RateLimited(ApiError):
    status = 429

    def __init__(self, message: str, *, code: str = "", retry_after: float = 1.0) -> None:
        super().__init__(message, code=code)
        self.retry_after = retry_after


_BY_STATUS: dict[int, type[ApiError]] = {
    cls.status: cls for cls in (BadRequest, Unauthorized, Forbidden, NotFound, Conflict, TooLarge)
}
_BY_CLOSE: dict[int, type[ApiError]] = {
    cls.close_code: cls
    for cls in (BadRequest, Unauthorized, Forbidden, NotFound, TooLarge)
    if cls.close_code is not None
}
FINAL_CLOSE_CODES = frozenset(_BY_CLOSE)
RELOAD = 4409  # the doc was reset or restored: drop local state, load again
TOKEN_EXPIRED = 4001  # a room token ran out: reconnect at once with a fresh one


def for_status(status: int, body: Any, retry_after: float = 1.0) -> ApiError:
    """The error for an HTTP refusal with collab's JSON error body (or anything else)."""
    error = body.get("error") if isinstance(body, dict) else None
    code = str(error.get("code", "")) if isinstance(error, dict) else ""
    message = str(error.get("message", "")) if isinstance(error, dict) else ""
    message = message or f"HTTP {status}"
    if status == 429:
        return RateLimited(message, code=code, retry_after=retry_after)
    cls = _BY_STATUS.get(status, ApiError)
    return cls(message, code=code, status=status)


def for_close(code: int, reason: str) -> ApiError:
    """The error for a socket closed with a final code (see ``FINAL_CLOSE_CODES``)."""
    cls = _BY_CLOSE.get(code, ApiError)
    return cls(reason or f"closed {code}", code=f"close_{code}")
