"""A deadline on each request's head: uvicorn's HTTP protocol, closing slowloris connections.

uvicorn 0.54 has no such bound. Its httptools protocol arms nothing when a connection opens,
and its keep-alive timer is cancelled by the first byte of a request and re-armed only after a
response, so a client that sends one header byte every few seconds (or nothing at all) holds
a connection, a file descriptor and a parser forever. ``limit_concurrency`` would not help: it
counts open WebSockets too, which a collaboration server keeps open for hours.

This subclass of ``HttpToolsProtocol`` (the protocol uvicorn's "auto" picks, httptools being
part of ``uvicorn[standard]``) arms a timer when the connection opens and whenever a new request
starts on a kept-alive one (``on_message_begin``), and cancels it once the head is complete
(``on_headers_complete``), before the request runs or the connection becomes a WebSocket. A
request whose head is not complete within ``header_timeout`` seconds has its connection closed,
like nginx's ``client_header_timeout``. The body, the handler and an open WebSocket are not
bounded by it: the API's body is capped in size (``collab.api.parsing.read_body``), sockets by
their ping timeout.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

log = logging.getLogger("collab.http")


def head_timeout_protocol(seconds: float) -> type[asyncio.Protocol]:
    """uvicorn's ``http`` protocol class, closing connections whose request head takes longer
    than ``seconds`` to arrive. uvicorn is imported here, when ``serve`` runs, not with the CLI."""
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    class HeadTimeoutProtocol(HttpToolsProtocol):
        header_timeout = seconds
        _head_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self._arm()

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._arm()  # a new request on a kept-alive connection; the first one is armed

        def on_headers_complete(self) -> None:
            self._disarm()  # before the request runs or the socket upgrades to a WebSocket
            super().on_headers_complete()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _arm(self) -> None:
            if self._head_timer is None:
                self._head_timer = self.loop.call_later(self.header_timeout, self._timed_out)

        def _disarm(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None

        def _timed_out(self) -> None:
            self._head_timer = None
            if not self.transport.is_closing():
                client = "%s:%d" % self.client if self.client else "unknown"  # noqa: UP031
                log.debug("request head not received in %gs from %s: closed", seconds, client)
                self.transport.close()

    return HeadTimeoutProtocol
