"""Structured logs of a real server: JSON lines, a connection id, no secrets or doc texts."""

from __future__ import annotations

import contextvars
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from collab import logs
from collab.auth import redact
from tests.api.conftest import Api
from tests.conftest import dev_token_leaked
from tests.support.nginx import shipped_nginx_running
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


async def test_debug_level_logs_no_credentials_and_no_doc_text(
    server_factory: Callable[..., CollabServer],
) -> None:
    """At --log-level debug the websockets library logs every handshake header and frame:
    Authorization, Cookie, ?token= and invite codes in paths come out masked, frames as their
    type and size. The fixture then greps the log for every credential minted here."""
    server = server_factory(log_level="debug")
    api = Api(server)
    try:
        alice, bob = api.user("alice-debug"), api.user("bob-debug")
        api.room(ROOM, owner=alice)
        invite = alice.http.post(f"/rooms/{ROOM}/invites", json={"role": "editor"})
        assert invite.status_code == 201, invite.text
        code = server.remember(invite.json()["code"])
        # The invite link as a browser opens it, then the API call that redeems it.
        async with httpx.AsyncClient(timeout=10) as browser:
            await browser.get(f"{server.http_url}/invite/{code}")
        assert bob.http.post(f"/invites/{code}/accept").status_code == 200
        room_token = server.mint_token("ibis-debug", ROOM, "editor")
        session = server.session(alice.user_id)
        with anyio.fail_after(30):
            by_query = await RawPeer.connect(server.ws_url(ROOM, DOC, token=room_token))
            await by_query.insert(0, TEXT)
            await by_query.request_saved(1)
            await by_query.wait_for(lambda: by_query.saved == 1)
            await by_query.close()
            by_header = await RawPeer.connect(
                server.ws_url(ROOM, DOC, token=""),
                additional_headers={"authorization": f"Bearer {bob.token}"},
            )
            await by_header.close()
            by_cookie = await RawPeer.connect(
                server.ws_url(ROOM, DOC, token=""),
                additional_headers={
                    "cookie": f"collab_session={session}",
                    "origin": server.http_url,
                },
            )
            await by_cookie.close()
        assert api.cookie_client(alice.user_id, None).get("/me").status_code == 200
    finally:
        api.close()
    server.stop()  # every line is written
    records = json_lines(server)
    # The debug lines are there (the test sees what it means to), with the values masked.
    header_lines = [r["msg"] for r in records if r["level"] == "debug" and r["msg"][:2] == "< "]
    assert any(m.lower() == "< authorization: ***" for m in header_lines), header_lines[:20]
    assert any(m.lower() == "< cookie: ***" for m in header_lines)
    assert any(m.startswith("< GET /ws/") and "token=***" in m for m in header_lines)
    assert any(m.startswith("< BINARY [") for m in header_lines)  # a frame, size only
    text = server.log()
    assert f"/invite/{redact.REDACTED}" in text and f"/invites/{redact.REDACTED}/accept" in text
    for secret in (code, room_token, session, bob.token, alice.token):
        assert secret not in text
    assert TEXT not in text and "platypus" not in text
    assert not dev_token_leaked(server)


def test_shipped_nginx_configuration_logs_no_credentials(
    server: CollabServer, tmp_path: Path
) -> None:
    """Item 7: the shipped nginx configuration logged ``?token=`` (its default format logs the
    whole request line). Run it, as shipped, in front of a real server, and grep its logs."""
    secrets = {"token": "q-token-secret-8841", "code": "invite-code-secret-7730"}
    with shipped_nginx_running(tmp_path, server.port) as nginx, nginx.client(timeout=5) as client:
        base, root = nginx.base, nginx.root
        client.get(f"{base}/api/v1/me?token={secrets['token']}&x=1")
        client.get(f"{base}/invite/{secrets['code']}")
        client.post(f"{base}/api/v1/invites/{secrets['code']}/accept?token={server.dev_token}")
        plain = httpx.get(f"http://127.0.0.1:{nginx.http}/collab/ws/r/d?token={secrets['token']}")
        assert plain.status_code == 301
    logs_text = "".join(log.read_text() for log in root.glob("*.log"))
    for secret in [*secrets.values(), server.dev_token]:
        assert secret not in logs_text
    access = (root / "collab.access.log").read_text()
    assert len(access.splitlines()) == 5, access
    assert '"GET /collab/api/v1/me?*** HTTP/1.1"' in access
    assert '"GET /collab/invite/*** HTTP/1.1"' in access
    assert '"GET /collab/ws/r/d?*** HTTP/1.1" 301' in access
    assert '"POST /collab/api/v1/invites/***/accept?*** HTTP/1.1"' in access
