"""A TCP proxy a test controls, in one of three modes:

- ``pass`` (``restore()``): bytes go both ways;
- ``reset`` (``cut()``): every connection through it is dropped (WebSockets included, which
  Playwright's offline mode does not do) and new ones are refused;
- ``blackhole`` (``blackhole()``): a partition as a client sees it: connections stay open and
  new ones are accepted, but whatever either side sends is read and thrown away, so nothing
  fails, nothing answers, and only a client's own timeouts can tell.

A connection that lost bytes in a blackhole is dropped when the proxy passes again: TCP never
loses bytes in the middle of a stream, so the closest real outcome of a long partition is a
connection that died, not one that silently skipped a reply.

It runs its own event loop in a thread, so sync tests (Playwright's sync API) can use it.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from typing import Literal

from tests.support.server import free_port

Mode = Literal["pass", "reset", "blackhole"]


class TcpProxy:
    def __init__(self, target_port: int, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = free_port()
        self.target_port = target_port
        self.mode: Mode = "pass"
        self._loop = asyncio.new_event_loop()
        self._writers: set[asyncio.StreamWriter] = set()
        self._tainted: set[asyncio.StreamWriter] = set()  # client ends that lost bytes
        self._server: asyncio.Server | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    @property
    def http_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def cut_off(self) -> bool:
        return self.mode == "reset"

    def start(self) -> None:
        self._thread.start()
        self._call(self._start())

    def _call(self, coro: object) -> None:
        asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)  # type: ignore[arg-type]

    async def _start(self) -> None:
        self._server = await asyncio.start_server(self._client, self.host, self.port)

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.mode == "reset":
            writer.transport.abort()  # refused: reset at once
            return
        if self.mode == "blackhole":
            await self._swallow(reader, writer)
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(self.host, self.target_port)
        except OSError:
            writer.transport.abort()
            return
        self._writers.update((writer, up_writer))
        try:
            await asyncio.gather(
                self._pipe(reader, up_writer, writer), self._pipe(up_reader, writer, writer)
            )
        finally:
            for w in (writer, up_writer):
                self._writers.discard(w)
                w.transport.abort()
            self._tainted.discard(writer)

    async def _swallow(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Accepted in a blackhole: read everything, answer nothing, forward nothing."""
        self._writers.add(writer)
        self._tainted.add(writer)
        try:
            with contextlib.suppress(OSError, ConnectionError):
                while await reader.read(65536):
                    pass
        finally:
            self._writers.discard(writer)
            self._tainted.discard(writer)
            writer.transport.abort()

    async def _pipe(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        client: asyncio.StreamWriter,
    ) -> None:
        with contextlib.suppress(OSError, ConnectionError):
            while data := await reader.read(65536):
                if self.mode == "blackhole":
                    self._tainted.add(client)  # read and dropped: this stream lost bytes
                    continue
                writer.write(data)
                await writer.drain()
        writer.transport.abort()

    def cut(self) -> None:
        """Reset: drop every open connection (both sides) and refuse new ones."""

        async def cut() -> None:
            self.mode = "reset"
            for writer in list(self._writers):
                writer.transport.abort()

        self._call(cut())

    def blackhole(self) -> None:
        """Keep every connection open and accept new ones, but pass nothing either way."""

        async def blackhole() -> None:
            self.mode = "blackhole"

        self._call(blackhole())

    def restore(self) -> None:
        """Pass bytes again; connections that lost some in a blackhole are dropped."""

        async def restore() -> None:
            self.mode = "pass"
            for writer in list(self._tainted):
                writer.transport.abort()
            self._tainted.clear()

        self._call(restore())

    def stop(self) -> None:
        async def stop() -> None:
            self.mode = "reset"
            for writer in list(self._writers):
                writer.transport.abort()
            if self._server is not None:
                self._server.close()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        self._call(stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()


@contextlib.contextmanager
def tcp_proxy(target_port: int) -> Iterator[TcpProxy]:
    proxy = TcpProxy(target_port)
    proxy.start()
    try:
        yield proxy
    finally:
        proxy.stop()
