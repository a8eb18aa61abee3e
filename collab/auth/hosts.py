"""``HostCheck``: serve only the host names collab is meant to be reached at (DNS rebinding).

A web page whose own name an attacker re-points at 127.0.0.1 reaches a loopback server as a
same-origin page: the browser still sends the attacker's name in ``Host``. So a request is only
served when its ``Host`` names this server:

- dev mode: loopback names and addresses (``localhost``, ``127.0.0.0/8``, ``::1``), any port;
- the public URL's host, when one is set;
- every ``allowed_hosts`` entry (``name``, ``*.example.com`` for its subdomains, ``*`` for any).

Outside dev mode, with neither a public URL nor ``allowed_hosts``, the names collab is reached
at are unknown and every ``Host`` is served. ``/healthz`` and ``/readyz`` are always served
(load balancers probe by address). A refused request gets HTTP 400, a refused WebSocket
handshake the same 400 before accept (or, without the denial extension, a close: 403). Ports
are not compared: the name is what a rebinding attacker controls.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Awaitable
from dataclasses import dataclass
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from collab.auth.devmode import is_dev_mode, is_loopback_host
from collab.errors import json_error
from collab.settings import Settings

EXEMPT_PATHS = frozenset({"/healthz", "/readyz"})
# A Host header: a DNS name or IPv4 address, or a bracketed IPv6 address; an optional port.
_HOST = re.compile(r"(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+)(?::(?P<port>[0-9]{1,5}))?")


def host_name(header: str | None) -> str | None:
    """The name a ``Host`` header gives (lowercased, no port, no brackets, no trailing dot),
    or None when it is missing or malformed (``user@host``, spaces, a second colon...)."""
    if not header:
        return None
    match = _HOST.fullmatch(header.strip())
    if match is None:
        return None
    name = match["host"].lower().removesuffix(".")
    if name.startswith("["):
        try:
            return str(ipaddress.IPv6Address(name[1:-1]))
        except ValueError:
            return None
    return name or None


def _entry(value: str) -> str:
    """An allowed-hosts entry as it is compared: lowercased, brackets and port dropped."""
    value = value.strip().lower()
    if value.startswith("*"):
        return value
    return host_name(value) or value


@dataclass(frozen=True)
class HostPolicy:
    """Which ``Host`` names are served (see the module doc)."""

    names: frozenset[str]
    suffixes: tuple[str, ...]  # from "*.example.com": ".example.com"
    loopback: bool
    any_host: bool

    @classmethod
    def from_settings(cls, settings: Settings) -> HostPolicy:
        entries = [_entry(e) for e in settings.allowed_hosts.split(",") if e.strip()]
        public = urlsplit(settings.public_url).hostname if settings.public_url else None
        names = {e for e in entries if not e.startswith("*")}
        if public:
            names.add(_entry(public))
        dev = is_dev_mode(settings)
        unknown = not dev and not names and not entries
        return cls(
            names=frozenset(names),
            suffixes=tuple(e[1:] for e in entries if e.startswith("*.")),
            loopback=dev,
            any_host="*" in entries or unknown,
        )

    def allows(self, name: str | None) -> bool:
        if self.any_host:
            return True
        if name is None:
            return False
        if name in self.names or any(name.endswith(s) for s in self.suffixes):
            return True
        return self.loopback and is_loopback_host(name)


class HostCheck:
    """Pure ASGI: refuse HTTP requests and WebSocket handshakes addressed to a foreign host."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.policy = HostPolicy.from_settings(settings)

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        # Not a coroutine: an allowed request gets the inner app's awaitable, so this layer
        # keeps no frame for the lifetime of a socket.
        if (
            scope["type"] not in ("http", "websocket")
            or scope["path"] in EXEMPT_PATHS
            or self.policy.allows(host_name(Headers(scope=scope).get("host")))
        ):
            return self.app(scope, receive, send)
        return self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = json_error(400, "bad_host", "this server is not reached at that host name")
        if scope["type"] == "http" or "websocket.http.response" in scope.get("extensions", {}):
            await response(scope, receive, send)  # Starlette sends it as a denial on a socket
        else:
            await send({"type": "websocket.close", "code": 1008})
