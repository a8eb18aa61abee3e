"""A real y-websocket client (tests/js/peer.mjs under node), scripted from async tests.

    async with JsPeer(server.ws_base, "room/doc") as peer:
        await peer.call({"op": "insert", "index": 0, "text": "hi"})
        await peer.wait_event("synced")

Each command is one JSON line on the child's stdin, answered by one JSON line; the child also
prints events (status, synced, close, closed, permission-denied). ``peer.kill()`` drops it
abruptly (SIGKILL: no awareness goodbye, no close frame), like a tab whose machine vanished.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import signal
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

import anyio
import pytest
from anyio.abc import Process, TaskGroup
from anyio.streams.buffered import BufferedByteReceiveStream

JS_DIR = Path(__file__).resolve().parent.parent / "js"
PEER_JS = JS_DIR / "peer.mjs"


def require_node() -> str:
    """The node executable; skips the test without node or ``npm ci``, fails instead on CI."""
    node = shutil.which("node")
    if node is None:
        reason = "node is not installed"
    elif not (JS_DIR / "node_modules" / "y-websocket").is_dir():
        reason = "tests/js/node_modules is missing: run `npm ci --prefix tests/js`"
    else:
        return node
    if os.environ.get("CI") == "true":
        pytest.fail(f"interop tests must run on CI: {reason}")
    pytest.skip(reason)


class JsPeerError(Exception):
    pass


class JsPeer:
    def __init__(
        self, base: str, room: str, params: dict[str, str] | None = None, *, timeout: float = 10
    ) -> None:
        self.base = base
        self.room = room
        self.params = params or {}
        self.timeout = timeout
        self.events: list[dict[str, Any]] = []
        self.client_id: int | None = None
        self.stderr = b""
        self._ids = itertools.count(1)
        self._replies: dict[int, dict[str, Any]] = {}
        self._changed = anyio.Event()
        self._eof = False
        self._proc: Process | None = None
        self._tg: TaskGroup | None = None

    async def __aenter__(self) -> JsPeer:
        node = require_node()
        self._proc = await anyio.open_process(
            [node, str(PEER_JS), self.base, self.room, json.dumps(self.params)], cwd=JS_DIR
        )
        self._tg = anyio.create_task_group()
        await self._tg.__aenter__()
        self._tg.start_soon(self._read_stdout)
        self._tg.start_soon(self._read_stderr)
        ready = await self.wait_event("ready")
        self.client_id = int(ready["clientID"])
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._proc is not None and self._tg is not None
        try:
            if self._proc.returncode is None and not self._eof:
                with anyio.move_on_after(2):
                    await self.call({"op": "exit"})
            with anyio.move_on_after(3):
                await self._proc.wait()
        finally:
            self.kill()
            # Exiting the task group absorbs the cancellation it is asked for here.
            self._tg.cancel_scope.cancel()
            await self._tg.__aexit__(None, None, None)
            with anyio.CancelScope(shield=True):
                await self._proc.wait()
                await self._proc.aclose()

    def kill(self) -> None:
        """SIGKILL: the socket drops with no goodbye."""
        assert self._proc is not None
        if self._proc.returncode is None:
            self._proc.send_signal(signal.SIGKILL)

    async def wait_killed(self) -> None:
        assert self._proc is not None
        with anyio.fail_after(self.timeout):
            await self._proc.wait()

    async def _read_stdout(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        stream = BufferedByteReceiveStream(self._proc.stdout)
        try:
            while True:
                line = await stream.receive_until(b"\n", 16 * 1024 * 1024)
                message = json.loads(line)
                if "event" in message:
                    self.events.append(message)
                else:
                    self._replies[message["id"]] = message
                self._wake()
        except (anyio.EndOfStream, anyio.IncompleteRead, anyio.ClosedResourceError):
            pass
        finally:
            self._eof = True
            self._wake()

    async def _read_stderr(self) -> None:
        assert self._proc is not None and self._proc.stderr is not None
        try:
            async for chunk in self._proc.stderr:
                self.stderr += chunk
        except anyio.ClosedResourceError:
            pass

    def _wake(self) -> None:
        self._changed.set()
        self._changed = anyio.Event()

    async def _wait_until(self, found: Callable[[], Any], what: str, within: float) -> Any:
        try:
            with anyio.fail_after(within):
                while True:
                    result = found()
                    if result is not None:
                        return result
                    if self._eof:
                        raise JsPeerError(f"node peer exited while waiting for {what}")
                    await self._changed.wait()
        except TimeoutError:
            raise TimeoutError(
                f"no {what} from the node peer within {within}s; events: {self.events[-10:]}; "
                f"stderr: {self.stderr.decode(errors='replace')[-2000:]}"
            ) from None

    async def call(self, command: dict[str, Any], within: float | None = None) -> dict[str, Any]:
        """Send one command; return its reply (waiting up to ``within`` seconds).

        Raises JsPeerError if the peer answered with an error.
        """
        assert self._proc is not None and self._proc.stdin is not None
        call_id = next(self._ids)
        await self._proc.stdin.send(json.dumps({**command, "id": call_id}).encode() + b"\n")
        if within is None:
            # Leave the peer's own deadline room to answer first (its error says more).
            within = command.get("timeout_ms", 0) / 1000 + self.timeout
        reply: dict[str, Any] = await self._wait_until(
            lambda: self._replies.pop(call_id, None), f"reply to {command['op']}", within
        )
        if not reply["ok"]:
            raise JsPeerError(f"{command['op']}: {reply['error']}")
        return reply

    async def wait_event(
        self, name: str, within: float | None = None, **fields: Any
    ) -> dict[str, Any]:
        """The first event named ``name`` (with those field values) seen so far, or the next."""

        def find() -> dict[str, Any] | None:
            for event in self.events:
                if event["event"] == name and all(event.get(k) == v for k, v in fields.items()):
                    return event
            return None

        result: dict[str, Any] = await self._wait_until(
            find, f"event {name} {fields or ''}", self.timeout if within is None else within
        )
        return result

    def count_events(self, name: str, **fields: Any) -> int:
        return sum(
            1
            for e in self.events
            if e["event"] == name and all(e.get(k) == v for k, v in fields.items())
        )

    async def text(self) -> str:
        return str((await self.call({"op": "text"}))["text"])

    async def states(self) -> dict[int, Any]:
        states = (await self.call({"op": "states"}))["states"]
        return {int(k): v for k, v in states.items()}
