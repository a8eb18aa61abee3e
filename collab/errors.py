"""The error tree, and the one place that maps it to WebSocket close codes.

    CollabError                     1011  server bug (the default)
    +-- Refusal                     a client asked for something it may not have
    |   +-- BadName                 4400  malformed room or doc name
    |   +-- Unauthorized            4401  missing, expired or forged credentials
    |   +-- Forbidden               4403  not a member, role too low
    |   +-- NotFound                4404  room or doc does not exist
    |   +-- GenerationMismatch      4409  the doc was reset or restored: reload
    |   +-- DocTooLarge             4413  the doc would grow past max_doc_size
    +-- BadInput                    the bytes themselves are wrong
    |   +-- ProtocolViolation       1002  framing: bad varint, truncated, trailing bytes
    |   +-- UnsupportedData         1003  a text frame
    |   +-- HostileInput            1007  outside the bounded grammar or over a cap
    +-- Overloaded                  1013  slow consumer, pending budget, overload
    +-- RateLimited                 1008  over its message/byte rate for too long
    +-- RoomFailed                  1011  the doc could not be loaded or committed

Close reasons are short and never carry payload bytes, tokens or message text.
"""

from __future__ import annotations

import asyncio


class CollabError(Exception):
    close_code = 1011
    reason = "internal error"

    def __init__(self, reason: str | None = None) -> None:
        super().__init__(reason or self.reason)
        if reason:
            self.reason = reason


class Refusal(CollabError):
    close_code = 4403
    reason = "forbidden"


class BadName(Refusal):
    close_code = 4400
    reason = "bad room or document name"


class Unauthorized(Refusal):
    close_code = 4401
    reason = "unauthorized"


class Forbidden(Refusal):
    close_code = 4403
    reason = "forbidden"


class NotFound(Refusal):
    close_code = 4404
    reason = "not found"


class GenerationMismatch(Refusal):
    close_code = 4409
    reason = "document was reset: reload"


class DocTooLarge(Refusal):
    close_code = 4413
    reason = "document too large"


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
    if isinstance(exc, CollabError):
        return exc.close_code, exc.reason[:120]
    return 1011, "internal error"
