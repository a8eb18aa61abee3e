"""A real `collab serve` process on a free loopback port, for tests that need the real thing."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class CollabServer:
    """``collab serve`` in a child process; restartable on the same store and port."""

    def __init__(self, workdir: Path, store: str | None = None, **settings: object) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.store = store or f"sqlite:///{workdir / 'collab.db'}"
        self.settings = settings
        self.log_path = workdir / "server.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_base(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    def ws_url(self, room: str, doc: str, query: str = "") -> str:
        return f"{self.ws_base}/{room}/{doc}" + (f"?{query}" if query else "")

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, timeout: float = 15.0) -> None:
        env = dict(os.environ)
        env.update({f"COLLAB_{k.upper()}": str(v) for k, v in self.settings.items()})
        env["COLLAB_STORE"] = self.store
        env["COLLAB_HOST"] = "127.0.0.1"
        env["COLLAB_PORT"] = str(self.port)
        env.setdefault("COLLAB_LOG_LEVEL", "info")
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "collab", "serve"],
            cwd=self.workdir,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"collab serve exited {self.proc.returncode}:\n{self.log()}")
            try:
                if httpx.get(self.http_url + "/readyz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"collab serve did not become ready:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text("utf-8", errors="replace") if self.log_path.exists() else ""

    def terminate(self, timeout: float = 15.0) -> int:
        """SIGTERM and wait; returns the exit code."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(10)

    def restart(self) -> None:
        self.terminate()
        self.start()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
