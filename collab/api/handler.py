"""The wrapper every /api/v1 handler wears: any exception becomes its JSON error, once.

``collab.errors.error_response`` is the mapping; a refusal at a configured cap is counted
(``collab_quota_refusals``) here, where it is answered.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response

from collab.errors import error_response
from collab.services import services

Handler = Callable[[Request], Awaitable[Response]]


def api_endpoint(handler: Handler) -> Handler:
    """Wrap a handler so every exception becomes its JSON error response."""

    @functools.wraps(handler)
    async def wrapped(request: Request) -> Response:
        try:
            return await handler(request)
        except Exception as exc:
            services(request).metrics.refusal(exc)
            return error_response(exc)

    return wrapped
