"""JSON errors for /api/v1: the collab error tree mapped to HTTP statuses in one place.

Every refusal is ``{"error": {"code": "...", "message": "..."}}`` with its status. Handlers
raise; :func:`error_response` is the only place that turns an exception into a response.

    Refusal (collab.errors)
    +-- BadName                 400  bad_name
    +-- BadRequest (here)       400  bad_request    malformed JSON, unknown role, bad field
    +-- Unauthorized            401  unauthorized
    +-- Forbidden               403  forbidden
    |   +-- LimitReached (here) 403  limit_reached  rooms per user, docs per room
    +-- NotFound                404  not_found
    +-- MethodNotAllowed (here) 405  method_not_allowed
    +-- Conflict (here)         409  conflict       exists already; the last owner
    +-- GenerationMismatch      409  generation_mismatch
    +-- DocTooLarge             413  too_large
    MetaStore's Conflict / NotFoundError map to 409 / 404; anything else is a 500.
"""

from __future__ import annotations

import logging

from starlette.responses import JSONResponse

from collab import errors
from collab.meta import base as meta

log = logging.getLogger("collab.api")


class BadRequest(errors.Refusal):
    close_code = 4400
    reason = "bad request"


class LimitReached(errors.Forbidden):
    reason = "limit reached"


class MethodNotAllowed(errors.Refusal):
    reason = "method not allowed"


class Conflict(errors.Refusal):
    close_code = 4409
    reason = "conflict"


# Most specific first: the first isinstance match wins.
_STATUS: list[tuple[type[BaseException], int, str]] = [
    (errors.BadName, 400, "bad_name"),
    (BadRequest, 400, "bad_request"),
    (errors.Unauthorized, 401, "unauthorized"),
    (LimitReached, 403, "limit_reached"),
    (errors.Forbidden, 403, "forbidden"),
    (errors.NotFound, 404, "not_found"),
    (MethodNotAllowed, 405, "method_not_allowed"),
    (errors.GenerationMismatch, 409, "generation_mismatch"),
    (Conflict, 409, "conflict"),
    (errors.DocTooLarge, 413, "too_large"),
    (errors.Refusal, 403, "forbidden"),
    (meta.Conflict, 409, "conflict"),
    (meta.NotFoundError, 404, "not_found"),
]


def json_error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


def error_response(exc: Exception) -> JSONResponse:
    for kind, status, code in _STATUS:
        if isinstance(exc, kind):
            message = exc.reason if isinstance(exc, errors.CollabError) else str(exc)
            return json_error(status, code, message[:200])
    log.exception("API handler failed", exc_info=exc)
    return json_error(500, "internal", "internal error")
