"""One attempt: POST the signed body to the checked address, and judge the answer.

The connection goes to ``Target.address`` (the one ``targets.resolve`` checked) while the URL,
the Host header and the TLS server name keep the host as written: DNS is not asked again.
Redirects are never followed (a 3xx is a failure: it could point anywhere), the whole attempt
is cut at ``timeout`` seconds (connect, TLS, sending, waiting, reading), and at most
``max_read`` bytes of the answer are read (its body is not kept: only the status).
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Iterable
from dataclasses import dataclass

import anyio
import httpcore2
from httpcore2 import SOCKET_OPTION, AnyIOBackend, AsyncNetworkBackend, AsyncNetworkStream

from collab.webhooks.targets import Target


@dataclass(frozen=True)
class Outcome:
    status: int | None  # None: no answer
    latency: float
    error: str | None  # None: delivered (a 2xx)

    @property
    def ok(self) -> bool:
        return self.error is None


class PinnedBackend(AsyncNetworkBackend):
    """Connects every request to one address, whatever host the URL names."""

    def __init__(self, address: str) -> None:
        self.address = address
        self._inner = AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        local_address: str | None = None,
        socket_options: Iterable[SOCKET_OPTION] | None = None,
    ) -> AsyncNetworkStream:
        return await self._inner.connect_tcp(
            self.address, port, timeout, local_address, socket_options
        )

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(seconds)


async def send(
    target: Target,
    headers: dict[str, str],
    body: bytes,
    *,
    timeout: float = 5.0,  # noqa: ASYNC109 (the whole attempt's deadline, applied inside)
    max_read: int = 4096,
    ssl_context: ssl.SSLContext | None = None,
) -> Outcome:
    started = time.monotonic()
    status: int | None = None
    try:
        with anyio.fail_after(timeout):
            async with httpcore2.AsyncConnectionPool(
                ssl_context=ssl_context,
                max_connections=1,
                network_backend=PinnedBackend(target.address),
            ) as pool:
                async with pool.stream(
                    "POST",
                    target.url,
                    headers=list(headers.items()),
                    content=body,
                    extensions={"timeout": {"connect": timeout, "read": timeout}},
                ) as response:
                    status = response.status
                    read = 0
                    async for chunk in response.aiter_stream():
                        read += len(chunk)
                        if read >= max_read:
                            break
    except TimeoutError:
        return Outcome(status, time.monotonic() - started, f"no answer within {timeout:.3g} s")
    except (httpcore2.NetworkError, httpcore2.ProtocolError, httpcore2.TimeoutException) as exc:
        return Outcome(status, time.monotonic() - started, f"{type(exc).__name__}: {exc}"[:200])
    except OSError as exc:
        return Outcome(status, time.monotonic() - started, f"connection failed: {exc}"[:200])
    latency = time.monotonic() - started
    if status is not None and 200 <= status < 300:
        return Outcome(status, latency, None)
    return Outcome(
        status,
        latency,
        f"HTTP {status}"
        + (" (redirects are not followed)" if status and 300 <= status < 400 else ""),
    )
