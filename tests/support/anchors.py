"""Servers under test: collab, and pycrdt-websocket 0.16.5 as the anchor it must beat.

A regression scenario is written once against ``ServerUnderTest`` (where a room's socket is,
how to restart the server on the same store, its log) and run against both: collab must pass,
the anchor must fail (tests/test_anchor_defects.py marks it ``xfail(strict=True)``).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Protocol

from tests.support.server import CollabServer, free_port
from tests.support.waiting import poll_until

ANCHOR_SCRIPT = Path(__file__).with_name("anchors_pycrdt_ws.py")


class ServerUnderTest(Protocol):
    name: str

    def url(self, room: str) -> str:
        """The WebSocket URL of one shared document, named ``room``."""
        ...

    def restart(self) -> None:
        """Stop gracefully (SIGTERM) and start again on the same store and port."""
        ...

    def log(self) -> str: ...

    def stop(self) -> None: ...


class CollabUnderTest:
    """collab: one document (``doc``) per room, at ``/ws/{room}/doc``."""

    name = "collab"

    def __init__(self, server: CollabServer) -> None:
        self.server = server

    def url(self, room: str) -> str:
        return self.server.ws_url(room, "doc")

    def restart(self) -> None:
        self.server.restart()

    def log(self) -> str:
        return self.server.log()

    def stop(self) -> None:
        self.server.stop()


class PycrdtWebsocketServer:
    """pycrdt-websocket's WebsocketServer + ASGIServer on uvicorn, SQLiteYStore per room."""

    name = "pycrdt-websocket"

    def __init__(self, workdir: Path, *, auto_clean_rooms: bool = True) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.db_path = workdir / "ystore.db"
        self.auto_clean_rooms = auto_clean_rooms
        self.log_path = workdir / "anchor.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def url(self, room: str) -> str:
        return f"ws://127.0.0.1:{self.port}/{room}"

    def start(self, timeout: float = 15.0) -> None:
        args = [sys.executable, str(ANCHOR_SCRIPT), str(self.port), str(self.db_path)]
        if not self.auto_clean_rooms:
            args.append("--no-auto-clean-rooms")
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                args, cwd=self.workdir, env=dict(os.environ), stdout=log, stderr=subprocess.STDOUT
            )
        if not poll_until(self._serving, timeout):
            raise RuntimeError(f"anchor did not start:\n{self.log()}")

    def _serving(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise RuntimeError(f"anchor exited {self.proc.returncode}:\n{self.log()}")
        # No health route: a TCP accept means uvicorn is serving.
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return True
        except OSError:
            return False

    def log(self) -> str:
        return self.log_path.read_text("utf-8", errors="replace") if self.log_path.exists() else ""

    def restart(self) -> None:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.start()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
