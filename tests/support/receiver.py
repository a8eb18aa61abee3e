"""A webhook receiver on loopback: a minimal HTTP/1.1 server whose answers a test scripts.

Each request is recorded (method, path, headers, body, when); the answer is the next of
``script`` (then ``default``): a status code, ``"hang"`` (never answers), or
``("redirect", url)`` (a 302 to ``url``).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from types import TracebackType

Answer = int | str | tuple[str, str]


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float = field(default_factory=time.monotonic)


class Receiver:
    def __init__(self, script: list[Answer] | None = None, default: Answer = 204) -> None:
        self.script = list(script or [])
        self.default = default
        self.received: list[Received] = []
        self.arrived = asyncio.Event()
        self._server: asyncio.Server | None = None
        self._hung: list[asyncio.StreamWriter] = []

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    def url(self, path: str = "/hook", host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    async def __aenter__(self) -> Receiver:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._server is not None
        for writer in self._hung:
            writer.close()
        self._server.close()
        await self._server.wait_closed()

    async def wait_for(self, count: int, within: float = 10) -> list[Received]:
        async with asyncio.timeout(within):
            while len(self.received) < count:
                self.arrived.clear()
                await self.arrived.wait()
        return self.received

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, path, _ = lines[0].split(" ", 2)
            headers = {}
            for line in lines[1:]:
                if ":" in line:
                    name, value = line.split(":", 1)
                    headers[name.strip().lower()] = value.strip()
            body = await reader.readexactly(int(headers.get("content-length", "0")))
        except (asyncio.IncompleteReadError, ValueError, ConnectionError):
            writer.close()
            return
        self.received.append(Received(method, path, headers, body))
        self.arrived.set()
        answer = self.script.pop(0) if self.script else self.default
        if answer == "hang":
            self._hung.append(writer)
            return
        extra = ""
        if isinstance(answer, tuple):
            status, extra = 302, f"location: {answer[1]}\r\n"
        else:
            status = int(answer)
        reply = f"HTTP/1.1 {status} X\r\n{extra}content-length: 2\r\nconnection: close\r\n\r\n"
        writer.write(reply.encode() + b"ok")
        try:
            await writer.drain()
        finally:
            writer.close()
