"""``GET /api/v1/server``: what a client needs to know of this server before it connects.

The limits a client sizes itself by (``collab.client`` sets its WebSocket ``max_size`` from
them: a doc's first sync arrives as one message) and the version. Any credential may ask.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from collab import __version__
from collab.api import access
from collab.api.handler import api_endpoint
from collab.services import services


@api_endpoint
async def server_info(request: Request) -> Response:
    """The server's version and the limits clients size themselves by."""
    await access.require_principal(request)
    settings = services(request).settings
    limits = {
        "ws_max_size": settings.ws_max_size,
        "max_doc_size": settings.max_doc_size,
        "max_message_length": settings.max_message_length,
        "token_max_ttl": settings.token_max_ttl,
        "max_upload_size": settings.max_upload_size,  # a client refuses a larger file at once
    }
    return JSONResponse({"version": __version__, "limits": limits})
