"""One frozen Settings object, every knob of the server, and the one way to build it.

Each setting is a field of ``Settings`` with a ``COLLAB_*`` environment twin and a key of the
optional TOML config file (``port = 8080``). ``Settings.load`` is how every command builds one:
command line > environment > config file > default; ``from_sources`` and ``from_env`` are the
same resolution (``resolve``) for callers that already hold the file's values, or have no
file. That resolution is also the one place every value is checked (each setting's check in
``collab.settings.checks.CHECKS``): a bad value raises ``SettingsError``, one line per value
naming the setting, the value and where it came from, before any command does anything.
``Settings(...)`` itself checks nothing (tests build partial ones). Nothing is read at import.
The CLI builds its options from the same field table (``SETTINGS_FIELDS``), so a setting
exists in exactly one place, with one help text, and README's settings table is checked
against it by a test. A config file key that is not a setting is an error naming the key, so
a typo never silently falls back to a default.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from collab.settings.sources import (
    ConfigError,
    Resolved,
    SettingsError,
    env_name,
    is_secret,
    masked,
)
from collab.settings.sources import load_config_file as _load_config_file
from collab.settings.sources import resolve as _resolve

__all__ = [
    "CONFIG_ENV",
    "SETTINGS_FIELDS",
    "ConfigError",
    "Resolved",
    "Settings",
    "SettingsError",
    "describe",
    "env_name",
    "is_secret",
    "load_config_file",
    "masked",
    "resolve",
    "setting_sources",
]

CONFIG_ENV = "COLLAB_CONFIG"


def _opt(default: Any, help: str) -> Any:
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class Settings:
    host: str = _opt("127.0.0.1", "Address to bind.")
    port: int = _opt(8000, "Port to bind (0 picks a free one).")
    store: str = _opt(
        "sqlite:///collab.db",
        "Where all persistent state lives: sqlite:///relative.db, sqlite:////absolute.db, "
        "a bare path, postgresql://user@host/db (several nodes share it; `collab migrate` "
        "first), or memory:// (tests).",
    )
    ssl_certfile: str = _opt("", "TLS certificate (PEM) to serve https/wss directly (uvicorn).")
    ssl_keyfile: str = _opt("", "TLS private key (PEM) for ssl_certfile.")
    sqlite_synchronous: str = _opt(
        "FULL",
        "SQLite synchronous mode: FULL (saved = on disk, survives power loss) or NORMAL "
        "(survives a server crash, not a power loss).",
    )
    fanout: str = _opt(
        "none",
        "How nodes sharing the store pass updates to each other: none (one node) or "
        "redis://host:6379/0 (several nodes; docs/scale-out.md).",
    )
    fanout_prefix: str = _opt(
        "collab", "Prefix of every Redis key the fan-out writes (deployments sharing a Redis)."
    )
    head_poll_interval: float = _opt(
        5.0,
        "With a fanout: seconds between checks of each open document against the store (an "
        "update whose node died before fanning it out arrives within this).",
    )
    head_poll_degraded: float = _opt(
        0.5,
        "With a fanout: the same checks' interval while Redis is unreachable (then they carry "
        "updates between nodes).",
    )
    role_recheck_interval: float = _opt(
        5.0,
        "With a fanout: seconds between re-reads of the role and the credentials behind every "
        "open socket, of the rooms every live stream lists and of the read markers every "
        "loaded chat doc shows (a role change, a removal, a revoked session or token, a "
        "user's read markers turned private, made on another node whose announcement was "
        "lost, e.g. while Redis was down, takes effect within this).",
    )
    store_health_interval: float = _opt(
        5.0,
        "With a PostgreSQL store: seconds between the pings behind the collab_store_healthy "
        "metric.",
    )
    user_recheck_interval: float = _opt(
        5.0,
        "Seconds between checks of whether the users behind open sockets were disabled (by "
        "`collab user disable`, another process, or another node): their sockets close 4401 "
        "within this.",
    )
    ws_max_size: int = _opt(
        16 * 1024 * 1024, "Largest WebSocket message accepted (bytes); 1009 past it."
    )
    ws_per_message_deflate: bool = _opt(
        False, "Accept permessage-deflate compression on WebSockets (costs CPU and memory)."
    )
    ws_ping_interval: float = _opt(
        5.0, "Seconds between server pings; a peer that misses one for ws_ping_timeout is dropped."
    )
    ws_ping_timeout: float = _opt(5.0, "Seconds to wait for a pong before dropping the socket.")
    max_doc_size: int = _opt(
        64 * 1024 * 1024, "Largest stored size of one document (bytes); 4413 past it."
    )
    max_any_depth: int = _opt(64, "Deepest nesting of JSON-like content inside one update.")
    max_type_depth: int = _opt(
        64, "Deepest nesting of shared types (Y.Map in Y.Map ...) in one document."
    )
    max_pending_structs: int = _opt(
        10_000,
        "Items whose dependencies never arrived, per document; the sender is closed past it.",
    )
    outbound_queue_bytes: int = _opt(
        8 * 1024 * 1024,
        "Bytes queued for one socket before it counts as a slow consumer and is closed with 1013.",
    )
    send_timeout: float = _opt(
        10.0, "Seconds one send may block before the socket counts as a slow consumer (1013)."
    )
    compact_rows: int = _opt(500, "Compact a document once its update log has this many rows.")
    compact_bytes: int = _opt(
        1024 * 1024,
        "Compact a document once its update log exceeds this many bytes and the snapshot's size.",
    )
    room_idle_seconds: float = _opt(
        10.0, "Seconds a document stays loaded after its last client leaves."
    )
    timeout_graceful_shutdown: float = _opt(
        8.0, "Seconds to wait for connections to close on SIGTERM before forcing them."
    )
    header_timeout: float = _opt(
        10.0,
        "Seconds a client has to send a request's line and headers before the connection is "
        "closed (slowloris); open WebSockets are not affected.",
    )
    body_timeout: float = _opt(
        30.0,
        "Seconds a request body (an upload, an API request) may go without a byte arriving "
        "before it is refused (HTTP 408) and the connection closed (a trickled body).",
    )
    log_level: str = _opt("info", "Log level: debug, info, warning, error, critical.")
    log_format: str = _opt(
        "auto",
        "Log lines as json (one object per line, with room/doc/user/conn) or text; auto: text "
        "when stderr is a terminal (a person is reading), json otherwise (services, pipes).",
    )
    metrics_token: str = _opt(
        "", "Bearer token /metrics requires (unset: /metrics is open, like /healthz)."
    )
    metrics_port: int = _opt(
        0, "Serve /metrics on this port (same host) instead of the main one (0: main port)."
    )
    public_url: str = _opt(
        "",
        "The URL users reach collab at (https://collab.example.com/base): Origin allow-list, "
        "OIDC redirect URI, Secure cookies, links. Unset: taken from each request.",
    )
    oidc_issuer: str = _opt("", "OpenID provider issuer URL (discovery); unset = dev mode.")
    oidc_client_id: str = _opt("", "OpenID Connect client id.")
    oidc_client_secret: str = _opt("", "OpenID Connect client secret.")
    secret_key: str = _opt(
        "",
        "Signing keys, comma-separated (first signs, all verify). Unset: a key generated once "
        "into the data directory (mode 0600).",
    )
    dev_token: str = _opt(
        "", "Dev mode's login token (unset: random at each start, printed with the login URL)."
    )
    admins: str = _opt("", "Site admins, comma-separated: verified emails or issuer:sub.")
    allowed_origins: str = _opt(
        "", "Extra Origins allowed for cookie-authenticated sockets, comma-separated."
    )
    allowed_hosts: str = _opt(
        "",
        "Host names served besides the public URL's (and loopback in dev mode), "
        "comma-separated; *.example.com matches subdomains, * any host. HTTP 400 otherwise.",
    )
    forwarded_allow_ips: str = _opt(
        "127.0.0.1", "Proxies whose X-Forwarded-* headers are trusted (uvicorn's setting)."
    )
    max_connections: int = _opt(
        10_000, "Open sockets in total; new handshakes get HTTP 503 past it."
    )
    max_connections_per_user: int = _opt(
        128, "Open sockets per user (tabs x open docs); HTTP 429 past it."
    )
    max_rooms_loaded: int = _opt(
        10_000, "Documents held in memory; idle ones are evicted first, then joins get 1013."
    )
    conn_messages_per_second: float = _opt(
        500.0, "Messages per second one socket may send; over it the server stops reading."
    )
    conn_message_burst: int = _opt(2_000, "Messages one socket may send at once.")
    conn_bytes_per_second: float = _opt(
        8 * 1024 * 1024, "Bytes per second one socket may send; over it the server stops reading."
    )
    conn_byte_burst: int = _opt(64 * 1024 * 1024, "Bytes one socket may send at once.")
    conn_stall_seconds: float = _opt(
        10.0, "Seconds a socket may stay over its rate before it is closed with 1008."
    )
    awareness_per_second: float = _opt(
        10.0, "Awareness updates per second relayed per socket; past it only the latest is sent."
    )
    awareness_burst: int = _opt(30, "Awareness updates one socket may send at once.")
    typing_timeout: float = _opt(
        5.0, "Seconds an awareness `typing` field lives unrefreshed; then the server clears it."
    )
    overload_lag_seconds: float = _opt(
        1.0, "Event-loop lag past which new handshakes get HTTP 503 (0 turns it off)."
    )
    handshake_rate: float = _opt(
        10.0, "WebSocket handshakes per second per client address (HTTP 429 past it)."
    )
    handshake_burst: int = _opt(60, "Handshakes a client address may make at once.")
    login_rate: float = _opt(0.2, "Login attempts per second per client address (HTTP 429).")
    login_burst: int = _opt(10, "Login attempts a client address may make at once.")
    auth_failure_rate: float = _opt(
        0.5,
        "Failed credentials per second per client address on the API and sockets; past the "
        "burst, credentials from that address get HTTP 429 unchecked.",
    )
    auth_failure_burst: int = _opt(20, "Failed credentials a client address may make at once.")
    auto_create_rooms: bool = _opt(True, "Create a room on the first join of a signed-in user.")
    max_rooms_per_user: int = _opt(100, "Rooms one user may create.")
    max_docs_per_room: int = _opt(1000, "Documents one room may hold.")
    max_upload_size: int = _opt(
        100 * 1024 * 1024,
        "Largest uploaded file (bytes); refused with HTTP 413 while it streams in, past it.",
    )
    max_room_files_bytes: int = _opt(
        10 * 1024 * 1024 * 1024,
        "Bytes of files one room may hold (the sum of its uploads); HTTP 403 limit_reached past "
        "it.",
    )
    files_dir: str = _opt(
        "",
        "Directory of the uploaded files' bytes (content-addressed). Unset: `files` beside the "
        "SQLite database (a temporary directory for memory://).",
    )
    session_ttl: float = _opt(14 * 24 * 3600.0, "Seconds a login session lasts.")
    api_create_rate: float = _opt(
        1.0,
        "Things one user may create per second through the API, per kind (rooms, members, "
        "invites, room tokens, API tokens, file uploads); HTTP 429 with Retry-After past it.",
    )
    api_create_burst: int = _opt(60, "Things of one kind a user may create at once.")
    max_message_length: int = _opt(
        10_000, "Longest chat message text (characters); HTTP 413 too_large past it."
    )
    chat_live_messages: int = _opt(
        1000,
        "Chat messages a room's `chat` doc keeps; older ones move to the archive (still served "
        "by the history API).",
    )
    chat_write_rate: float = _opt(
        10.0,
        "Chat writes (posts, edits, deletes, reactions, read markers) one user may make per "
        "second, API and socket together; HTTP 429 with Retry-After past it.",
    )
    chat_write_burst: int = _opt(60, "Chat writes one user may make at once.")
    search_rate: float = _opt(
        2.0, "Searches one user may run per second; HTTP 429 with Retry-After past it."
    )
    search_burst: int = _opt(20, "Searches one user may run at once.")
    search_index_delay: float = _opt(
        1.0,
        "Seconds after a document's commit before its text is re-indexed for search (a doc "
        "edited without pause is re-indexed once per this interval).",
    )
    audit_retention: float = _opt(
        365 * 24 * 3600.0, "Seconds audit rows are kept before the purge deletes them (0: forever)."
    )
    webhook_retention: float = _opt(
        30 * 24 * 3600.0,
        "Seconds outgoing webhook deliveries are kept once delivered or given up, with their "
        "attempts, before the purge deletes them (0: forever).",
    )
    purge_interval: float = _opt(
        3600.0,
        "Seconds between the server's purges of used or expired invites, sessions, tickets, "
        "old audit rows and finished webhook deliveries, and collections of unreferenced files "
        "(0: only `collab purge` and `collab files gc`).",
    )
    token_max_ttl: float = _opt(3600.0, "Longest lifetime of a room token (seconds).")
    webhook_allow_http: bool = _opt(
        False, "Let outgoing webhooks use http:// URLs (default: https:// only)."
    )
    webhook_allow_networks: str = _opt(
        "",
        "Networks outgoing webhooks may reach although not public (loopback, private, "
        "link-local...), comma-separated: 10.0.0.0/8,127.0.0.1. Default: public addresses only.",
    )

    @classmethod
    def load(
        cls,
        config: str | os.PathLike[str] | None = None,
        environ: Mapping[str, str] | None = None,
        **overrides: Any,
    ) -> Settings:
        """Every command's loader: ``overrides`` (the command line, None = not given), then
        ``COLLAB_*`` variables, then the TOML file ``config`` (if any), then the defaults.
        Raises ``ConfigError`` for an unreadable file, ``SettingsError`` naming every bad
        value with where it came from."""
        file_values = load_config_file(config) if config else None
        return cls(**resolve(environ, file_values, config, **overrides).values())

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Defaults, then ``COLLAB_*`` variables, then explicit overrides; no config file."""
        return cls.from_sources(environ, None, **overrides)

    @classmethod
    def from_sources(
        cls,
        environ: Mapping[str, str] | None = None,
        file_values: Mapping[str, Any] | None = None,
        **overrides: Any,
    ) -> Settings:
        """Defaults, then a config file's values (``load_config_file``), then ``COLLAB_*``
        variables, then explicit overrides: command line > environment > file > default."""
        return cls(**resolve(environ, file_values, None, **overrides).values())


SETTINGS_FIELDS = dataclasses.fields(Settings)


def resolve(
    environ: Mapping[str, str] | None = None,
    file_values: Mapping[str, Any] | None = None,
    config: str | os.PathLike[str] | None = None,
    **overrides: Any,
) -> Resolved:
    """Every setting's value and source, and every problem (``collab.settings.sources``)."""
    return _resolve(SETTINGS_FIELDS, environ, file_values, config, overrides)


def setting_sources(
    environ: Mapping[str, str] | None = None,
    file_values: Mapping[str, Any] | None = None,
    **overrides: Any,
) -> dict[str, tuple[Any, str]]:
    """Every setting's effective value and where it came from: cli, env, file or default."""
    resolved = resolve(environ, file_values, None, **overrides)
    resolved.values()  # raises SettingsError on a bad value
    return resolved.sources


def describe(
    config: str | os.PathLike[str] | None,
    environ: Mapping[str, str] | None = None,
    **overrides: Any,
) -> tuple[list[tuple[str, Any, str]], list[str]]:
    """(name, masked value, source) for every setting, and one line per bad value: what
    ``collab config check`` prints. Only an unreadable config file raises (``ConfigError``)."""
    file_values = load_config_file(config) if config else None
    resolved = resolve(environ, file_values, config, **overrides)
    rows = [(name, masked(name, value), src) for name, (value, src) in resolved.sources.items()]
    return rows, resolved.problems


def load_config_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The settings a TOML file sets, type-checked against the Settings fields."""
    return _load_config_file(path, SETTINGS_FIELDS)
