"""A real `collab serve` process on a free loopback port, for tests that need the real thing."""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import signal
import socket
import ssl
import subprocess
import sys
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import httpx

from tests.support.waiting import poll_until

if TYPE_CHECKING:
    from collab.meta import MetaStore

T = TypeVar("T")


def _run_in_thread(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion from sync or async test code alike."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServerFactory(Protocol):
    """The ``server_factory`` fixture: start a ``collab serve`` with these settings (any
    ``COLLAB_*`` name, lower case, any value: each is passed as ``str(value)``)."""

    def __call__(self, **settings: Any) -> CollabServer: ...


class CollabServer:
    """``collab serve`` in a child process; restartable on the same store and port."""

    def __init__(self, workdir: Path, store: str | None = None, **settings: object) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.store = store or f"sqlite:///{workdir / 'collab.db'}"
        self.settings = settings
        self.log_path = workdir / "server.log"
        # Dev mode, as a developer runs it: every socket and request presents this token.
        self.dev_token = str(settings.get("dev_token", f"test-dev-token-{self.port}"))
        self.proc: subprocess.Popen[bytes] | None = None
        self.secrets: list[str] = []

    @property
    def tls(self) -> bool:
        return bool(self.settings.get("ssl_certfile"))

    @property
    def http_url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    @property
    def ws_base(self) -> str:
        return f"{'wss' if self.tls else 'ws'}://127.0.0.1:{self.port}/ws"

    @property
    def params(self) -> dict[str, str]:
        """Query parameters a client passes to authenticate (y-websocket's ``params``)."""
        return {"token": self.dev_token}

    def ws_url(self, room: str, doc: str, query: str = "", *, token: str | None = None) -> str:
        """A document's URL, with the dev token unless another ``token`` ("" for none)."""
        token = self.dev_token if token is None else token
        parts = [p for p in (f"token={token}" if token else "", query) if p]
        return f"{self.ws_base}/{room}/{doc}" + (f"?{'&'.join(parts)}" if parts else "")

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, timeout: float = 15.0) -> None:
        env = dict(os.environ)
        env.update({f"COLLAB_{k.upper()}": str(v) for k, v in self.settings.items()})
        env["COLLAB_STORE"] = self.store
        env["COLLAB_DEV_TOKEN"] = self.dev_token
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
        if not poll_until(self._ready, timeout):
            raise RuntimeError(f"collab serve did not become ready:\n{self.log()}")

    def _ready(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise RuntimeError(f"collab serve exited {self.proc.returncode}:\n{self.log()}")
        verify: ssl.SSLContext | bool = True
        if self.tls:
            verify = ssl.create_default_context(cafile=str(self.settings["ssl_certfile"]))
        try:
            return httpx.get(self.http_url + "/readyz", timeout=1, verify=verify).status_code == 200
        except httpx.HTTPError:
            return False

    def mint_token(self, user: str, room: str, role: str = "editor", ttl: float = 3600) -> str:
        """A room token for another user, made the way an admin would (MetaStore + key)."""
        return self.remember(_run_in_thread(self._mint_token(user, room, role, ttl)))

    async def _mint_token(self, name: str, room: str, role: str, ttl: float) -> str:
        from collab.auth.keys import load_secret_keys
        from collab.auth.tokens import mint_room_token
        from collab.errors import Conflict
        from collab.meta import open_meta_store
        from collab.meta.base import Role
        from collab.settings import Settings

        meta = open_meta_store(self.store)
        await meta.open()
        try:
            user = await meta.upsert_oidc_user(
                "test", name, name=name, email=None, email_verified=False, picture=None
            )
            try:
                await meta.create_room(room, room, user.id)
            except Conflict:
                pass
            await meta.set_member(room, user.id, Role.parse(role))
        finally:
            await meta.close()
        keys = load_secret_keys(Settings(store=self.store))
        return mint_room_token(keys, user_id=user.id, room_id=room, role=Role.parse(role), ttl=ttl)

    def with_meta(self, fn: Callable[[MetaStore], Awaitable[T]]) -> T:
        """Run ``fn`` against the server's MetaStore (same SQLite file; WAL lets both write)."""

        async def run() -> T:
            from collab.meta import open_meta_store

            meta = open_meta_store(self.store)
            await meta.open()
            try:
                return await fn(meta)
            finally:
                await meta.close()

        return _run_in_thread(run())

    def create_user(
        self, name: str, *, email: str | None = None, verified: bool = False, issuer: str = "test"
    ) -> str:
        """A user row (as a login would make it); returns the user id."""

        async def create(meta: Any) -> str:
            user = await meta.upsert_oidc_user(
                issuer, name, name=name, email=email, email_verified=verified, picture=None
            )
            return str(user.id)

        return self.with_meta(create)

    def api_token(self, user_id: str, name: str = "test") -> str:
        """A personal API token for a user (the secret)."""

        async def create(meta: Any) -> str:
            _, secret = await meta.create_api_token(user_id, name)
            return str(secret)

        return self.remember(self.with_meta(create))

    def session(self, user_id: str, ttl: float = 3600) -> str:
        """A login session for a user; returns the cookie value."""

        async def create(meta: Any) -> str:
            _, secret = await meta.create_session(user_id, ttl)
            return str(secret)

        return self.remember(self.with_meta(create))

    def remember(self, secret: str) -> str:
        """Note a credential a test minted: the fixture checks none of them reach the log."""
        self.secrets.append(secret)
        return secret

    def leaked_secrets(self) -> list[str]:
        log = self.log()
        return [secret for secret in self.secrets if secret and secret in log]

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
        """Teardown: SIGTERM, so the server exits as in production (and a coverage run saves
        its data); SIGKILL if it is still running after ``timeout_graceful_shutdown`` and more."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


class NodesFactory(Protocol):
    """The ``nodes`` fixture: start ``count`` nodes sharing one store (``settings`` as for
    ``server_factory``; a ``fanout`` URL makes them pass updates to each other)."""

    def __call__(self, count: int, **settings: Any) -> list[CollabServer]: ...


def start_nodes(workdir: Path, count: int, **settings: Any) -> list[CollabServer]:
    """``count`` ``collab serve`` processes on ONE store, as behind a load balancer: each has
    its own port, working directory and log; they share the database (and with it the secret
    key beside it) and one dev token, so a credential minted through one works on all. Started
    one after the other, so the first one alone applies migrations and creates the key.
    Called again in one test (nodes with settings of their own: ``dev_token`` and the store
    given), it numbers the new nodes' directories after the earlier ones."""
    settings.setdefault("store", f"sqlite:///{workdir / 'collab.db'}")
    settings.setdefault("dev_token", f"test-dev-token-nodes-{free_port()}")
    nodes: list[CollabServer] = []
    first = len(list(workdir.glob("node*")))
    try:
        for index in range(first, first + count):
            home = workdir / f"node{index}"
            home.mkdir(exist_ok=True)
            node = CollabServer(home, **settings)
            nodes.append(node)
            node.start()
    except BaseException:
        for node in nodes:
            node.stop()
        raise
    return nodes
