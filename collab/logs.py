"""Structured logs: one JSON object per line, with each socket's fields carried through.

Every WebSocket gets a short random connection id as it arrives (``collab.metrics``'s socket
middleware calls :func:`start_connection`); the endpoint adds room, doc, user and peer as it
learns them (:func:`bind`). The fields live in a context variable, so every line logged while
serving that socket carries them without being passed around: collab's own lines, and
uvicorn's handshake line (logged from the same task). A record adds or overrides fields with
``extra={"code": 1007}``.

What never goes in: message texts, tokens, secrets. Fields are ids, names and close codes;
uvicorn's query strings are redacted by ``collab.auth.redact`` (a logger filter, which runs
before any handler formats the record).
"""

from __future__ import annotations

import contextvars
import datetime
import json
import logging
import secrets
import sys
from typing import Any

FIELDS = ("conn", "room", "doc", "user", "peer", "code", "status")
FORMATS = ("auto", "json", "text")  # auto: text on a terminal, json elsewhere

_fields: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "collab_log_fields", default=None
)


def start_connection() -> dict[str, Any]:
    """A fresh field set with a new connection id, for the socket served by this task.

    The dict is shared by the tasks this one starts (the socket's sender), which belong to the
    same connection; tasks that outlive or serve many sockets start from :func:`detached`.
    """
    fields: dict[str, Any] = {"conn": secrets.token_hex(4)}
    _fields.set(fields)
    return fields


def bind(**fields: Any) -> None:
    """Add fields (room, doc, user, peer...) to every later line of the current connection."""
    current = _fields.get()
    if current is None:
        current = {}
        _fields.set(current)
    current.update({k: v for k, v in fields.items() if v is not None})


def current() -> dict[str, Any]:
    return dict(_fields.get() or {})


def doc_fields(key: tuple[str, str]) -> dict[str, str]:
    """``extra=`` for a line about one document (a ``DocKey``)."""
    return {"room": key[0], "doc": key[1]}


def detached() -> contextvars.Context:
    """A context without connection fields, for tasks that are no one socket's (commits)."""
    context = contextvars.copy_context()
    context.run(_fields.set, None)
    return context


def _record_fields(record: logging.LogRecord) -> dict[str, Any]:
    fields = dict(_fields.get() or {})
    for name in FIELDS:
        value = record.__dict__.get(name)
        if value is not None:
            fields[name] = value
    return fields


class JsonFormatter(logging.Formatter):
    """``{"ts", "level", "logger", "msg", ...fields, "exc"}``: one line per record."""

    def format(self, record: logging.LogRecord) -> str:
        ts = datetime.datetime.fromtimestamp(record.created, datetime.UTC)
        out: dict[str, Any] = {
            "ts": ts.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        out.update(_record_fields(record))
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        if record.stack_info:
            out["stack"] = self.formatStack(record.stack_info)
        return json.dumps(out, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """The classic line, with the fields appended as ``key=value``."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = _record_fields(record)
        if not fields:
            return line
        first, sep, rest = line.partition("\n")  # keep a traceback below the fields
        extra = " ".join(f"{k}={v}" for k, v in fields.items())
        return f"{first} [{extra}]{sep}{rest}"


def install(log_format: str, level: str) -> None:
    """Send every logger (collab's, uvicorn's, websockets') through one stderr handler.

    uvicorn must then be configured with ``log_config=None``, so its loggers propagate here
    instead of getting handlers of their own.
    """
    fmt = log_format.strip().lower()
    if fmt not in FORMATS:
        raise ValueError(f"log_format must be one of {', '.join(FORMATS)}, not {log_format!r}")
    if fmt == "auto":
        fmt = "text" if sys.stderr.isatty() else "json"
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
