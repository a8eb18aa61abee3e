"""Structured logs of a real server: JSON lines, a connection id, no secrets or doc texts."""

from __future__ import annotations

import contextvars
import json
import logging
from typing import Any

import anyio
import pytest

from collab import logs
from tests.support.rawpeer import RawPeer
from tests.support.server import CollabServer, ServerFactory
from tests.support.waiting import wait_until

pytestmark = pytest.mark.anyio

ROOM, DOC = "wombatroom3", "axolotldoc5"
TEXT = "platypus-private-paragraph-8841"


def json_lines(server: CollabServer) -> list[dict[str, Any]]:
    """The server's log lines that are log records (stdout's banner lines are not)."""
    return [json.loads(line) for line in server.log().splitlines() if line.startswith("{")]


async def test_log_lines_are_json_with_socket_fields_and_no_secrets(
    server: CollabServer,
) -> None:
    token = server.mint_token("ibis-editor", ROOM, "editor")
    with anyio.fail_after(20):
        writer = await RawPeer.connect(server.ws_url(ROOM, DOC, token=token))
        await writer.insert(0, TEXT)
        await writer.request_saved(1)
        await writer.wait_for(lambda: writer.saved == 1)
        await writer.websocket.send(b"\x00\x02\x05\x01")  # a length past the frame's end
        await writer.closed.wait()
    assert writer.close_code == 1002

    def closed_line() -> dict[str, Any] | None:
        for record in json_lines(server):
            if record["logger"] == "collab.ws" and record.get("code") == 1002:
                return record
        return None

    await wait_until(lambda: closed_line() is not None, 10, interval=0.05)
    closed = closed_line()
    assert closed is not None
    assert closed["room"] == ROOM and closed["doc"] == DOC
    assert closed["user"] and closed["peer"] and closed["conn"]
    assert closed["level"] == "info" and closed["ts"].endswith("Z")
    conn = closed["conn"]
    records = json_lines(server)
    about_socket = [r for r in records if r.get("conn") == conn]
    # uvicorn's handshake line went through the same formatter, redacted, with the same id.
    handshake = [
        r for r in about_socket if r["logger"] == "uvicorn.error" and "accepted" in r["msg"]
    ]
    assert handshake and "token=***" in handshake[0]["msg"]
    # The endpoint's refusal line names the close code and the same room/doc/conn.
    refusal = [r for r in about_socket if r["logger"] == "collab.endpoint"]
    assert refusal and refusal[0]["code"] == 1002 and refusal[0]["room"] == ROOM
    text = server.log()
    assert TEXT not in text and "platypus" not in text
    assert token not in text  # the fixture checks this too (every minted credential)


async def test_text_format_keeps_the_fields(server_factory: ServerFactory) -> None:
    server = server_factory(log_format="text")
    with anyio.fail_after(20):
        peer = await RawPeer.connect(server.ws_url(ROOM, DOC))
        await peer.close()

    def closed_line() -> str | None:
        return next((ln for ln in server.log().splitlines() if "socket closed" in ln), None)

    await wait_until(lambda: closed_line() is not None, 10, interval=0.05)
    line = closed_line()
    assert line is not None and not line.startswith("{")
    assert f"room={ROOM}" in line and f"doc={DOC}" in line and "conn=" in line
    assert "code=1000" in line


def test_formatter_merges_context_and_extra_fields() -> None:
    record = logging.LogRecord("collab.x", logging.WARNING, __file__, 1, "hello %s", ("you",), None)
    record.__dict__["code"] = 4403

    def format_in_connection() -> dict[str, Any]:
        logs.start_connection()
        logs.bind(room="r", doc="d", user=None)
        return dict(json.loads(logs.JsonFormatter().format(record)))

    out = contextvars.copy_context().run(format_in_connection)
    assert out["msg"] == "hello you" and out["level"] == "warning" and out["logger"] == "collab.x"
    assert out["room"] == "r" and out["doc"] == "d" and out["code"] == 4403
    assert len(out["conn"]) == 8 and "user" not in out
    # Outside any connection, and in a detached context, no socket fields.
    assert "conn" not in json.loads(logs.JsonFormatter().format(record))
    assert "conn" not in logs.detached().run(lambda: logs.current())
    with pytest.raises(ValueError, match="log_format"):
        logs.install("xml", "info")
