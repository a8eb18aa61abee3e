"""One socket's chat requests (type 101) and their replies (type 102), off the read loop.

A request waits for its change to be durable (DESIGN.md: "posted" survives kill -9), which the
read loop must not: each request runs in a task of its own, at most ``max_in_flight`` per
socket. Past that the request is answered at once with ``rate_limited`` (and ``retry_after``),
never queued and never a reason to close: the client learns it was not carried out and may send
it again with the same ``client_id``. Replies may come in any order; ``client_id`` correlates.

What a request does is the chat layer's business (the sync layer sits below it): the endpoint
is handed a :class:`ChatRequests` built on ``collab.chat.ChatService`` by ``collab.services``.
It raises a ``CollabError`` to refuse, answered as the API would: ``{"client_id", "error":
{"code", "message"}}``, plus ``"retry_after"`` (seconds) in the error of a ``rate_limited``.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from collab.auth.principal import Principal
from collab.errors import BadRequest, CollabError, TooManyRequests, http_error_for
from collab.wire import encode_reply, framing

log = logging.getLogger("collab.sync.requests")

MAX_IN_FLIGHT = 16  # requests one socket may have running at once
BUSY_RETRY_AFTER = 0.1  # seconds: a request of the socket's own should be done by then
MAX_CLIENT_ID = 128  # longer client ids are not echoed (the chat layer refuses them anyway)


class ChatRequests(Protocol):
    """The chat layer's side of type 101 (``collab.chat.requests.SocketChat``)."""

    async def handle(
        self, room_id: str, principal: Principal, request: Mapping[str, Any], address: str | None
    ) -> dict[str, Any]:
        """Carry out ``request`` for ``principal`` in ``room_id`` once it is durable; answer the
        message's ``{"id", "seq"}``, or raise a CollabError to refuse it."""
        ...


def client_id_of(request: Mapping[str, Any]) -> str | None:
    """The id a reply echoes: the request's ``client_id`` if it is a short string."""
    found = request.get("client_id")
    return found if isinstance(found, str) and len(found) <= MAX_CLIENT_ID else None


def error_reply(client_id: str | None, exc: BaseException) -> bytes:
    """The 102 frame refusing a request with ``exc``'s API code (``internal`` for a bug)."""
    mapped = http_error_for(exc)
    _, code, message = mapped if mapped is not None else (500, "internal", "internal error")
    error: dict[str, Any] = {"code": code, "message": message}
    if isinstance(exc, TooManyRequests):
        error["retry_after"] = math.ceil(exc.retry_after * 1000) / 1000  # ms, rounded up
    return framing.chat_reply(encode_reply({"client_id": client_id, "error": error}))


class Unserved:
    """The requests of a socket that takes none (any doc but ``chat``): ``bad_request``."""

    def __init__(self, send: Callable[[bytes], None]) -> None:
        self._send = send

    def submit(self, request: Mapping[str, Any]) -> None:
        refusal = BadRequest("chat requests go to the room's chat socket (/ws/{room}/chat)")
        self._send(error_reply(client_id_of(request), refusal))

    async def drain(self) -> None:
        return None


class SocketRequests:
    """The requests of one socket: ``submit`` never blocks; ``drain`` awaits what runs."""

    def __init__(
        self,
        handler: ChatRequests,
        room_id: str,
        principal: Principal,
        send: Callable[[bytes], None],
        *,
        address: str | None = None,
        on_refused: Callable[[CollabError], None] = lambda exc: None,
        max_in_flight: int = MAX_IN_FLIGHT,
    ) -> None:
        self.handler = handler
        self.room_id = room_id
        self.principal = principal
        self.address = address
        self.max_in_flight = max_in_flight
        self._send = send
        self._on_refused = on_refused  # metrics: quota refusals (message length)
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    def submit(self, request: Mapping[str, Any]) -> None:
        client_id = client_id_of(request)
        if len(self._tasks) >= self.max_in_flight:
            busy = TooManyRequests(None, BUSY_RETRY_AFTER, "too many requests in flight")
            self._send(error_reply(client_id, busy))
            return
        task = asyncio.get_running_loop().create_task(self._run(client_id, request))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, client_id: str | None, request: Mapping[str, Any]) -> None:
        try:
            done = await self.handler.handle(self.room_id, self.principal, request, self.address)
        except CollabError as exc:
            self._on_refused(exc)
            if exc.http_status is None:  # a socket-only error (RoomFailed): a server fault
                log.warning("chat request failed in %s: %r", self.room_id, exc)
            self._send(error_reply(client_id, exc))
            return
        except Exception as exc:
            log.exception("chat request failed in %s", self.room_id)
            self._send(error_reply(client_id, exc))
            return
        self._send(framing.chat_reply(encode_reply({"client_id": client_id, **done})))

    async def drain(self) -> None:
        """Wait for every request still running (the socket closed; its changes still land)."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
