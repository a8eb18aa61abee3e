"""What a valid value of each kind of setting is: small checks, one per rule, no IO but a stat.

A check takes the (already typed) value and returns None when it is fine, or a short phrase
saying what the value must be ("must be between 0 and 65535"); ``collab.settings`` puts the
setting's name, the value and where it came from in front of it. Every field of ``Settings``
names its check in its declaration, so a new setting is validated where it is declared.
"""

from __future__ import annotations

import ipaddress
import math
import os
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

Check = Callable[[Any], str | None]

# The store URL schemes collab can open (collab.store, collab.meta); a bare path is SQLite.
STORE_SCHEMES = ("sqlite", "memory")
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
LOG_FORMATS = ("auto", "json", "text")
SYNCHRONOUS = ("FULL", "NORMAL", "EXTRA")
# Shorter signing keys are guessable offline from any signed cookie or room token.
MIN_SECRET_KEY_LENGTH = 16


def finite(value: Any) -> str | None:
    """Every float setting: ``nan`` and ``inf`` parse as floats but mean nothing as a bound."""
    if isinstance(value, float) and not math.isfinite(value):
        return "must be a finite number"
    return None


def at_least(low: float, note: str = "") -> Check:
    def check(value: Any) -> str | None:
        if value < low:
            return f"must be at least {low:g}{note}"
        return None

    return check


def positive(value: Any) -> str | None:
    return None if value > 0 else "must be greater than 0"


def port(value: Any) -> str | None:
    if not 0 <= value <= 65535:
        return "must be a TCP port, 1-65535 (0 picks a free one)"
    return None


def one_of(*choices: str, fold: Callable[[str], str] = str.lower) -> Check:
    def check(value: Any) -> str | None:
        if fold(value.strip()) not in choices:
            return f"must be one of {', '.join(choices)}"
        return None

    return check


def non_empty(value: Any) -> str | None:
    return None if value.strip() else "must not be empty"


def store_url(value: Any) -> str | None:
    """``sqlite:///relative.db``, ``sqlite:////absolute.db``, a bare path, ``memory://``, or
    ``postgresql://...`` / ``postgres://...`` (libpq parses the rest when the store opens)."""
    text = value.strip()
    if not text:
        return "must not be empty"
    if text in {"memory://", "memory:"} or text.startswith(("postgresql://", "postgres://")):
        return None
    if text.startswith("sqlite:"):
        if not text.startswith("sqlite:///") or not text[len("sqlite:///") :]:
            return "a SQLite URL is sqlite:///relative.db or sqlite:////absolute.db"
        return None
    if "://" in text:
        scheme = text.split("://", 1)[0]
        return (
            f"unknown store scheme {scheme!r}: collab opens sqlite:///path, a bare path, "
            "postgresql://... or memory://"
        )
    return None


FANOUT_SCHEMES = ("redis", "rediss", "unix")
_KEY_PREFIX = re.compile(r"[A-Za-z0-9._:-]{1,64}")


def fanout_url(value: Any) -> str | None:
    """``none``, or a Redis URL (``redis://``, ``rediss://``, ``unix://``)."""
    text = value.strip()
    if text == "none":
        return None
    scheme = text.split("://", 1)[0] if "://" in text else ""
    if scheme not in FANOUT_SCHEMES:
        return "must be none or a Redis URL: redis://host:6379/0, rediss://..., unix:///path"
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 (raises on a port that is not a number or out of range)
    except ValueError as exc:
        return f"is not a URL ({exc})"
    if scheme != "unix" and not parts.hostname:
        return "needs a host: redis://host:6379/0"
    return None


def key_prefix(value: Any) -> str | None:
    if not _KEY_PREFIX.fullmatch(value):
        return "must be 1-64 of A-Z a-z 0-9 . _ : - (no braces: the room is the hash tag)"
    return None


def http_url(value: Any) -> str | None:
    """An absolute http(s) URL with a host and no query or fragment; unset is fine."""
    if not value:
        return None
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 (raises on a port that is not a number or out of range)
    except ValueError as exc:
        return f"is not a URL ({exc})"
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        return "must be an http:// or https:// URL with a host"
    if parts.query or parts.fragment:
        return "must not carry a query string or a fragment"
    return None


def origins(value: Any) -> str | None:
    """Comma-separated origins: ``scheme://host[:port]``, nothing after the authority."""
    for item in (part.strip() for part in value.split(",")):
        if not item:
            continue
        problem = http_url(item)
        if problem is None and urlsplit(item).path not in {"", "/"}:
            problem = "must be an origin, scheme://host[:port], without a path"
        if problem is not None:
            return f"{item!r} {problem}"
    return None


def networks(value: Any) -> str | None:
    """Comma-separated IP addresses or networks (``10.0.0.0/8``, ``::1``)."""
    for item in (part.strip() for part in value.split(",")):
        if not item:
            continue
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError:
            return f"{item!r} is not an IP address or network"
    return None


def trusted_proxies(value: Any) -> str | None:
    """``forwarded_allow_ips``: ``*`` alone, or comma-separated IP addresses and networks as
    uvicorn parses them (``ipaddress``, strictly). uvicorn keeps any other entry as a literal
    that no TCP client's address ever equals, silently: a host name or a typo trusts nobody."""
    items = [part.strip() for part in value.split(",") if part.strip()]
    if "*" in items:
        return None if items == ["*"] else "'*' trusts every address only alone"
    for item in items:
        try:
            ipaddress.ip_network(item) if "/" in item else ipaddress.ip_address(item)
        except ValueError:
            try:
                network = ipaddress.ip_network(item, strict=False)
            except ValueError:
                return f"{item!r} is not an IP address or network"
            return f"{item!r} has host bits set (the network is {network})"
    return None


# One allowed_hosts entry (collab.auth.hosts reads them): a DNS name or IPv4 address, an IPv6
# address bare or in brackets, an optional port (ignored); or "*.domain", or "*".
_HOST_ENTRY = re.compile(
    r"(\*|(\*\.)?[A-Za-z0-9._-]+|\[[0-9A-Fa-f:.]+\]|[0-9A-Fa-f]*:[0-9A-Fa-f:.]*)(:[0-9]{1,5})?"
)


def host_names(value: Any) -> str | None:
    """Comma-separated host names served besides the public URL's (``allowed_hosts``)."""
    for item in (part.strip() for part in value.split(",")):
        if item and not _HOST_ENTRY.fullmatch(item):
            return f"{item!r} must be a host name (a port is ignored), *.domain or *"
    return None


def secret_keys(value: Any) -> str | None:
    keys = [key.strip() for key in value.split(",") if key.strip()]
    if value.strip() and not keys:
        return "must name at least one key"
    if any(len(key) < MIN_SECRET_KEY_LENGTH for key in keys):
        return f"each key needs at least {MIN_SECRET_KEY_LENGTH} characters"
    return None


def readable_file(value: Any) -> str | None:
    """A file that exists and can be read (TLS material); unset is fine."""
    if not value:
        return None
    if not os.path.isfile(value):
        return "no such file"
    if not os.access(value, os.R_OK):
        return "cannot be read by this user"
    return None


def _free_text(value: Any) -> str | None:
    """Settings whose every value is acceptable here (ids, secrets, lists their users parse)."""
    return None


_SECONDS = positive
_COUNT = at_least(1)

# Every setting's check, by name: a new setting adds its line (tests/test_settings.py checks
# that every field has one). The ranges are what the code can run with, not advice.
CHECKS: dict[str, Check] = {
    "host": non_empty,
    "port": port,
    "store": store_url,
    "ssl_certfile": readable_file,
    "ssl_keyfile": readable_file,
    "sqlite_synchronous": one_of(*SYNCHRONOUS, fold=str.upper),
    "fanout": fanout_url,
    "fanout_prefix": key_prefix,
    "head_poll_interval": _SECONDS,
    "head_poll_degraded": _SECONDS,
    "role_recheck_interval": _SECONDS,
    "store_health_interval": _SECONDS,
    "user_recheck_interval": _SECONDS,
    "ws_max_size": _COUNT,
    "ws_per_message_deflate": _free_text,
    "ws_ping_interval": at_least(0, " (0 sends no pings)"),
    "ws_ping_timeout": _SECONDS,
    "max_doc_size": _COUNT,
    "max_any_depth": _COUNT,
    "max_type_depth": _COUNT,
    "max_pending_structs": at_least(0),
    "outbound_queue_bytes": _COUNT,
    "send_timeout": _SECONDS,
    "compact_rows": _COUNT,
    "compact_bytes": _COUNT,
    "room_idle_seconds": at_least(0),
    "timeout_graceful_shutdown": at_least(0),
    "header_timeout": _SECONDS,
    "body_timeout": _SECONDS,
    "log_level": one_of(*LOG_LEVELS),
    "log_format": one_of(*LOG_FORMATS),
    "metrics_token": _free_text,
    "metrics_port": port,
    "public_url": http_url,
    "oidc_issuer": http_url,
    "oidc_client_id": _free_text,
    "oidc_client_secret": _free_text,
    "secret_key": secret_keys,
    "dev_token": _free_text,
    "admins": _free_text,
    "allowed_origins": origins,
    "allowed_hosts": host_names,
    "forwarded_allow_ips": trusted_proxies,
    "max_connections": _COUNT,
    "max_connections_per_user": _COUNT,
    "max_rooms_loaded": _COUNT,
    "conn_messages_per_second": positive,
    "conn_message_burst": _COUNT,
    "conn_bytes_per_second": positive,
    "conn_byte_burst": _COUNT,
    "conn_stall_seconds": _SECONDS,
    "awareness_per_second": positive,
    "awareness_burst": _COUNT,
    "typing_timeout": _SECONDS,
    "overload_lag_seconds": at_least(0, " (0 turns it off)"),
    "handshake_rate": positive,
    "handshake_burst": _COUNT,
    "login_rate": positive,
    "login_burst": _COUNT,
    "auth_failure_rate": positive,
    "auth_failure_burst": _COUNT,
    "auto_create_rooms": _free_text,
    "max_rooms_per_user": at_least(0),
    "max_docs_per_room": at_least(0),
    "max_upload_size": _COUNT,
    "max_room_files_bytes": _COUNT,
    "files_dir": _free_text,
    "session_ttl": _SECONDS,
    "api_create_rate": positive,
    "api_create_burst": _COUNT,
    "max_message_length": _COUNT,
    "chat_live_messages": _COUNT,
    "chat_write_rate": positive,
    "chat_write_burst": _COUNT,
    "search_rate": positive,
    "search_burst": _COUNT,
    "search_index_delay": at_least(0),
    "audit_retention": at_least(0, " (0 keeps every row)"),
    "webhook_retention": at_least(0, " (0 keeps every delivery)"),
    "purge_interval": at_least(0, " (0: only collab purge)"),
    "token_max_ttl": at_least(1, " (a room token lives whole seconds)"),
    "webhook_allow_http": _free_text,
    "webhook_allow_networks": networks,
}


def cross_problems(value: dict[str, Any]) -> list[tuple[str, str]]:
    """(setting, what is wrong) for values each fine alone but not together."""
    out = []
    if value["ssl_keyfile"] and not value["ssl_certfile"]:
        out.append(("ssl_keyfile", "needs ssl_certfile too"))
    if value["metrics_port"] and value["metrics_port"] == value["port"]:
        out.append(("metrics_port", "must differ from port"))
    issuer = value["oidc_issuer"].strip()
    if issuer and not value["oidc_client_id"].strip():
        out.append(
            ("oidc_client_id", "must be set with oidc_issuer: the provider knows collab by it")
        )
    if not issuer and (value["oidc_client_id"].strip() or value["oidc_client_secret"]):
        out.append(
            (
                "oidc_issuer",
                "must be set with oidc_client_id and oidc_client_secret (unset, collab runs in "
                "dev mode and ignores them)",
            )
        )
    return out
