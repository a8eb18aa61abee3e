"""``Link``: what every room and doc of one client shares: the API, the credential, where the
sockets go and how large a message may be, how to back off."""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from collab.client.backoff import Backoff
from collab.client.credentials import Credentials
from collab.client.http import Api

# Used until the server says (GET /api/v1/server): its default max_doc_size and some slack.
DEFAULT_MAX_SIZE = 64 * 1024 * 1024 + 1024 * 1024


@dataclass
class Link:
    api: Api
    credentials: Credentials
    ws_base: str  # ws(s)://host[:port][/base]/ws
    max_size: int = DEFAULT_MAX_SIZE
    backoff: Callable[[], Backoff] = Backoff
    open_timeout: float = 10.0
    limits: dict[str, Any] = field(default_factory=dict)

    def doc_url(self, room: str, doc: str, generation: str | None) -> str:
        query = {"collab": "1"}  # opt in: "saved" echoes come back
        if generation:
            query["gen"] = generation
        path = f"{urllib.parse.quote(room, safe='')}/{urllib.parse.quote(doc, safe='')}"
        return f"{self.ws_base}/{path}?{urllib.parse.urlencode(query)}"

    async def generation(self, room: str, doc: str) -> str | None:
        """The stored doc's generation (None: not stored yet, or not listable now)."""
        cursor: str | None = None
        try:
            while True:
                params: dict[str, Any] = {"limit": 200}
                if cursor:
                    params["cursor"] = cursor
                page = await self.api.call("GET", f"/rooms/{room}/docs", params=params)
                for item in page["items"]:
                    if item["name"] == doc:
                        return str(item["generation"]) if item.get("generation") else None
                cursor = page.get("next_cursor")
                if not cursor:
                    return None
        except Exception:  # the socket will say what is wrong; a missing gen only weakens 4409
            return None


def ws_base_for(base_url: str) -> str:
    """``http(s)://host/base`` -> ``ws(s)://host/base/ws``."""
    parts = urllib.parse.urlsplit(base_url.rstrip("/"))
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme)
    if scheme is None:
        raise ValueError(f"the server URL must be http:// or https://, not {base_url!r}")
    return urllib.parse.urlunsplit((scheme, parts.netloc, parts.path + "/ws", "", ""))
