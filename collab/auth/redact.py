"""Keep credentials out of uvicorn's log lines.

uvicorn logs each request's path with its query string (``uvicorn.access``) and each WebSocket
handshake likewise (``uvicorn.error``): ``/login?token=...``, ``/auth/callback?code=...&state=``
and ``/ws/room/doc?token=...`` would put live credentials in the logs. This filter keeps every
query parameter's name and replaces its value.
"""

from __future__ import annotations

import logging
import re

_QUERY_VALUE = re.compile(r"([?&][^=&#\s\"]*)=[^&#\s\"]*")
REDACTED = "***"
LOGGERS = ("uvicorn.access", "uvicorn.error")


# Path segments that are credentials themselves (invite codes).
_SECRET_SEGMENT = re.compile(r"(/invites/)[^/?#\s\"]+")


def redact_url(text: str) -> str:
    """``/login?token=abc&next=/`` -> ``/login?token=***&next=***``; invite codes likewise."""
    text = _SECRET_SEGMENT.sub(rf"\1{REDACTED}", text)
    if "?" not in text:
        return text
    path, _, query = text.partition("?")
    return path + _QUERY_VALUE.sub(rf"\1={REDACTED}", "?" + query)


class RedactQueryStrings(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and any(
            isinstance(a, str) and ("?" in a or "/invites/" in a) for a in args
        ):
            record.args = tuple(
                redact_url(a) if isinstance(a, str) and a.startswith("/") else a for a in args
            )
        return True


def install() -> None:
    """Add the filter to uvicorn's loggers (after uvicorn configured its logging)."""
    for name in LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactQueryStrings) for f in logger.filters):
            logger.addFilter(RedactQueryStrings())
