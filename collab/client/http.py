"""``Api``: collab's HTTP API (``/api/v1``) over httpx2, with the client's credential.

Every call presents ``Authorization: Bearer`` (never ``?token=``: query strings end up in
logs), maps a refusal to its typed error (``collab.client.errors``) and, with ``retry``,
keeps trying through what a restart or a blip looks like (connection refused or reset,
timeouts, 502/503/504, 429 after its ``Retry-After``) with backoff, for at most ``retry``
seconds. Only calls that are safe to repeat pass ``retry``: reads, and writes made idempotent
by a ``client_id``. A 401 with a refreshable credential fetches a new token and tries once
more.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any

import anyio
import httpx2

from collab.client.backoff import Backoff
from collab.client.credentials import Credentials
from collab.client.errors import ApiError, RateLimited, Unauthorized, for_status

log = logging.getLogger("collab.client")

RETRY_STATUSES = frozenset({500, 502, 503, 504})


def _retry_after(response: httpx2.Response) -> float:
    raw = response.headers.get("retry-after", "")
    try:
        return max(0.0, min(float(raw), 300.0))
    except ValueError:
        return 1.0


class Api:
    def __init__(
        self,
        base_url: str,
        credentials: Credentials,
        *,
        timeout: float = 10.0,
        transport: httpx2.AsyncBaseTransport | None = None,
        backoff: Callable[[], Backoff] = Backoff,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.credentials = credentials
        self.backoff = backoff
        self.http = httpx2.AsyncClient(
            base_url=self.base_url + "/api/v1",
            timeout=timeout,
            transport=transport,
            follow_redirects=False,
        )

    async def aclose(self) -> None:
        await self.http.aclose()

    async def call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        retry: float = 0.0,
    ) -> Any:
        """The answer's JSON (None for 204); the typed error for a refusal."""
        backoff = self.backoff()
        deadline = anyio.current_time() + retry if retry < math.inf else math.inf
        refreshed = False
        while True:
            token = await self.credentials.get()
            try:
                response = await self.http.request(
                    method,
                    path,
                    json=json,
                    params=params,
                    headers={"authorization": f"Bearer {token}"},
                )
            except httpx2.TransportError as exc:
                wait = backoff.next()
                if anyio.current_time() + wait > deadline:
                    raise
                log.info("%s %s failed (%s); retrying in %.1fs", method, path, exc, wait)
                await anyio.sleep(wait)
                continue
            if response.status_code < 400:
                return (
                    None
                    if response.status_code == 204 or not response.content
                    else (response.json())
                )
            error = self._error(response)
            if isinstance(error, Unauthorized) and not refreshed:
                refreshed = await self.credentials.refresh(token)
                if refreshed:
                    continue
            retryable = isinstance(error, RateLimited) or response.status_code in RETRY_STATUSES
            wait = error.retry_after if isinstance(error, RateLimited) else backoff.next()
            if not retryable or anyio.current_time() + wait > deadline:
                raise error
            await anyio.sleep(wait)

    @staticmethod
    def _error(response: httpx2.Response) -> ApiError:
        try:
            body = response.json()
        except ValueError:
            body = None
        return for_status(response.status_code, body, _retry_after(response))
