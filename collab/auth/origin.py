"""The Origin allow-list for cookie-authenticated sockets and state-changing HTTP calls.

Browsers attach cookies to cross-site WebSocket handshakes (Cross-Site WebSocket Hijacking);
the Origin header is the one thing a foreign page cannot forge. Allowed: the public URL's
origin (or, unset, the origin this request was addressed to, after trusted proxy headers), and
``allowed_origins``.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.requests import HTTPConnection

from collab.settings import Settings

_DEFAULT_PORTS = {"http": 80, "https": 443}


def normalize_origin(url: str) -> str | None:
    parts = urlsplit(url.strip())
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    try:
        port = parts.port or _DEFAULT_PORTS[parts.scheme]
    except ValueError:
        return None
    return f"{parts.scheme}://{parts.hostname.lower()}:{port}"


def request_origin(conn: HTTPConnection) -> str | None:
    """The origin the client addressed: scheme (ws->http, wss->https) and Host header."""
    scheme = {"ws": "http", "wss": "https"}.get(conn.url.scheme, conn.url.scheme)
    host = conn.headers.get("host")
    return normalize_origin(f"{scheme}://{host}") if host else None


def allowed_origins(conn: HTTPConnection, settings: Settings) -> set[str]:
    allowed = {o for o in map(normalize_origin, settings.allowed_origins.split(",")) if o}
    public = normalize_origin(settings.public_url) if settings.public_url else request_origin(conn)
    if public:
        allowed.add(public)
    return allowed


def origin_allowed(conn: HTTPConnection, settings: Settings) -> bool:
    origin = conn.headers.get("origin")
    if origin is None:
        return False  # browsers always send Origin on WebSocket handshakes and unsafe requests
    normalized = normalize_origin(origin)
    return normalized is not None and normalized in allowed_origins(conn, settings)
