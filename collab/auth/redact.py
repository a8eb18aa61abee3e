"""Keep credentials out of the log lines collab does not write itself.

uvicorn logs each request's path with its query string (``uvicorn.access``) and each WebSocket
handshake likewise (``uvicorn.error``): ``/login?token=...``, ``/auth/callback?code=...&state=``
and ``/ws/room/doc?token=...`` would put live credentials in the logs. Some paths are
credentials themselves: an invite link ``/invite/{code}``, the API's
``/api/v1/invites/{code}/accept``. At ``--log-level debug`` the websockets library logs every
handshake header (``< authorization: Bearer ...``, ``< cookie: collab_session=...``) and every
frame with the start of its payload, decoded as text (document content).

``RedactSecrets`` is one logging filter for all of it: every query parameter keeps its name and
loses its value; the secret segment of every path in ``SECRET_PATHS`` is replaced; the values
of ``SECRET_HEADERS`` are replaced; a frame is logged as its type and size only. A route that
carries a secret in its path (an incoming webhook's ``/hooks/{secret}``) adds its pattern to
``SECRET_PATHS``; nothing else is needed.
"""

from __future__ import annotations

import logging
import re
from typing import Any

REDACTED = "***"

# Route patterns whose {secret} segment is a credential. They match anywhere in a path, so
# the API prefix (/api/v1) and a proxy's sub-path (/collab) are covered.
SECRET_PATHS: tuple[str, ...] = (
    "/invite/{secret}",  # the invite link a room owner shares (collab.api.invites)
    "/invites/{secret}",  # POST /api/v1/invites/{code}/accept
    "/hooks/{secret}",  # POST /api/v1/hooks/{id}.{secret}: an incoming webhook (collab.api.hooks)
)

# Request and response headers whose values are credentials.
SECRET_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "cookie", "set-cookie", "sec-websocket-protocol"}
)

# Loggers that print request lines, paths or headers: uvicorn's, and websockets' own names
# (uvicorn hands websockets its "uvicorn.error" logger, but another caller may not).
LOGGERS = ("uvicorn.access", "uvicorn.error", "websockets.server", "websockets.client")

# Loggers whose debug lines carry secrets in text already formatted (Authlib logs the PKCE
# code_verifier): held at INFO whatever the log level.
QUIET_LOGGERS = ("authlib",)

_QUERY_VALUE = re.compile(r"([?&][^=&#\s\"]*)=[^&#\s\"]*")


def _path_regex(pattern: str) -> re.Pattern[str]:
    head, _, tail = pattern.partition("{secret}")
    after = f"(?={re.escape(tail)})" if tail else ""
    return re.compile(f'({re.escape(head)})[^/?#\\s"]+{after}')


_SECRET_SEGMENTS = tuple(_path_regex(p) for p in SECRET_PATHS)


# ``scheme://user:password@host``: the password (a store's, Redis's URL), whatever the user.
_PASSWORD = re.compile(r"(://[^/@:\s]*):[^@/\s]*@")


def redact_url(text: str) -> str:
    """``/login?token=abc&next=/`` -> ``/login?token=***&next=***``; secret segments likewise
    (``/invite/abc`` -> ``/invite/***``), and a password in the URL's user information
    (``postgresql://collab:pw@db/x`` -> ``postgresql://collab:***@db/x``)."""
    path, sep, query = text.partition("?")
    path = _PASSWORD.sub(rf"\1:{REDACTED}@", path)
    for segment in _SECRET_SEGMENTS:
        path = segment.sub(rf"\1{REDACTED}", path)
    if not sep:
        return path
    return path + _QUERY_VALUE.sub(rf"\1={REDACTED}", "?" + query)


def _is_url(value: str) -> bool:
    return value.startswith("/") or "://" in value


def _is_frame(value: Any) -> bool:
    """A websockets Frame (duck-typed: this layer does not import websockets)."""
    return hasattr(value, "opcode") and isinstance(getattr(value, "data", None), bytes | bytearray)


def _frame_summary(frame: Any) -> str:
    name = getattr(frame.opcode, "name", str(frame.opcode))
    return f"{name} [{len(frame.data)} bytes]"


def redact_args(msg: object, args: tuple[Any, ...]) -> tuple[Any, ...]:
    """A log record's arguments with every credential replaced (see the module docstring)."""
    out = [
        _frame_summary(arg)
        if _is_frame(arg)
        else redact_url(arg)
        if isinstance(arg, str) and _is_url(arg)
        else arg
        for arg in args
    ]
    # websockets' header lines: ("< %s: %s" or "> %s: %s", name, value).
    header_line = isinstance(msg, str) and msg.endswith("%s: %s") and len(out) == 2
    if header_line and str(out[0]).strip().lower() in SECRET_HEADERS:
        out[1] = REDACTED
    return tuple(out)


class RedactSecrets(logging.Filter):
    """Rewrites the arguments of every record it sees; never drops one."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and record.args:
            record.args = redact_args(record.msg, record.args)
        return True


# The name this filter had when it covered query strings only.
RedactQueryStrings = RedactSecrets


def install(handlers: list[logging.Handler] | None = None) -> None:
    """Add the filter to the loggers that print requests and, when given, to ``handlers``
    (collab's one stderr handler: every record that reaches it, from any logger)."""
    for logger in [logging.getLogger(name) for name in LOGGERS]:
        _add(logger)
    for handler in handlers or []:
        _add(handler)
    for name in QUIET_LOGGERS:
        quiet = logging.getLogger(name)
        if quiet.getEffectiveLevel() < logging.INFO:
            quiet.setLevel(logging.INFO)


def _add(target: logging.Filterer) -> None:
    if not any(isinstance(f, RedactSecrets) for f in target.filters):
        target.addFilter(RedactSecrets())
