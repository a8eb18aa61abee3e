"""Where a webhook may be sent: the SSRF rules, checked at registration and at every attempt.

A target is an ``https://`` URL (``http://`` only with ``webhook_allow_http``), without
credentials in it. Its host is resolved and **every** address it resolves to must be public
(``ipaddress``'s ``is_global``, and not multicast): loopback, private (10/8, 172.16/12,
192.168/16, fc00::/7), link-local (169.254/16 with the cloud metadata address, fe80::/10),
shared (100.64/10), reserved and unspecified ranges are refused, and so are IPv4 addresses
hidden in IPv6 (``::ffff:127.0.0.1``, 6to4, NAT64 of a private address). The allow-list
(``webhook_allow_networks``: networks such as ``127.0.0.1/32``) lets such an address through,
for tests and for deployments that do mean to call an internal service. The address that
passed is the one connected to (``Target.address``): a name that resolves differently a
moment later (DNS rebinding) is never asked again for this attempt.
"""

from __future__ import annotations

import ipaddress
import socket
import urllib.parse
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import anyio

from collab.errors import BadRequest

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Awaitable[list[str]]]
MAX_URL = 2048


class TargetRefused(BadRequest):
    """A webhook URL that may not be called (its reason says why)."""


@dataclass(frozen=True)
class Target:
    url: str
    scheme: str
    host: str  # as written (the Host header and the TLS name)
    port: int
    address: str  # the checked address connected to


def parse_networks(value: str) -> list[Network]:
    """``webhook_allow_networks``: comma-separated addresses or networks."""
    found = []
    for part in (p.strip() for p in value.split(",")):
        if part:
            found.append(ipaddress.ip_network(part, strict=False))
    return found


def check_url(url: str, allow_http: bool) -> tuple[str, str, int]:
    """(scheme, host, port) of a well-formed URL we may call; TargetRefused otherwise."""
    if len(url) > MAX_URL or not url.isascii() or any(c.isspace() for c in url):
        raise TargetRefused("the URL must be ASCII, without spaces, at most 2048 characters")
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError:
        raise TargetRefused("malformed URL") from None
    schemes = ("https", "http") if allow_http else ("https",)
    if parts.scheme not in schemes:
        raise TargetRefused("webhook URLs must be https://" + ("" if allow_http else " here"))
    if parts.username is not None or parts.password is not None:
        raise TargetRefused("no credentials in the URL: the payload is signed instead")
    host = parts.hostname
    if not host or parts.fragment:
        raise TargetRefused("the URL needs a host, and no #fragment")
    return parts.scheme, host, port or (443 if parts.scheme == "https" else 80)


# IPv6 forms that carry an IPv4 address Python's ``is_global`` may take for public: the
# local-use NAT64 prefix (RFC 8215, any network's own translator), IPv4-compatible addresses
# (deprecated) and SIIT's IPv4-translated ones (RFC 2765).
_NOT_PUBLIC_V6 = tuple(
    ipaddress.ip_network(n) for n in ("64:ff9b:1::/48", "::/96", "::ffff:0:0:0/96")
)


def address_refusal(address: Address, allowed: Sequence[Network]) -> str | None:
    """Why ``address`` may not be called (None: it may)."""
    if any(address in network for network in allowed):
        return None
    if isinstance(address, ipaddress.IPv6Address):
        if any(address in network for network in _NOT_PUBLIC_V6):
            return f"{address}, not a public address"
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address in ipaddress.ip_network("64:ff9b::/96"):
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None:
            return address_refusal(embedded, allowed)
    if address.is_multicast or not address.is_global:
        return f"{address}, not a public address"
    return None


async def system_resolver(host: str, port: int) -> list[str]:
    infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


async def resolve(
    url: str,
    *,
    allow_http: bool,
    allowed: Sequence[Network],
    resolver: Resolver = system_resolver,
) -> Target:
    """The target to connect to, every address of its host checked; TargetRefused when any
    is refused or none resolves."""
    scheme, host, port = check_url(url, allow_http)
    try:
        literal: Address | None = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        addresses = [str(literal)]
    else:
        try:
            addresses = await resolver(host, port)
        except OSError as exc:
            raise TargetRefused(f"cannot resolve the host ({exc.strerror or exc})") from None
    if not addresses:
        raise TargetRefused("the host resolves to no address")
    for raw in addresses:
        refusal = address_refusal(ipaddress.ip_address(raw.split("%")[0]), allowed)
        if refusal is not None:
            raise TargetRefused(f"refused: {host} resolves to {refusal}")
    return Target(url, scheme, host, port, addresses[0].split("%")[0])
