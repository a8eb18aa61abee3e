"""Redis for tests: the machine's shared one (a unique key prefix per test, cleaned up after,
never FLUSHALL), or a private ``redis-server`` on a free port for tests that kill it.

Tests that need Redis skip with the reason when there is none, except under ``CI=true``, where
they fail: CI must run them.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import uuid
from pathlib import Path

import pytest

from tests.support.server import free_port
from tests.support.waiting import poll_until

SHARED_URL = os.environ.get("COLLAB_TEST_REDIS", "redis://127.0.0.1:6379/0")


def _missing(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"Redis tests must run on CI: {reason}")
    pytest.skip(reason)


def _answers(url: str) -> bool:
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


def shared_redis() -> str:
    """The shared Redis's URL; skips (fails on CI) when it does not answer."""
    try:
        import redis  # noqa: F401
    except ImportError:
        _missing("redis-py is not installed (pip install '.[test]')")
    if not _answers(SHARED_URL):
        _missing(f"no Redis answers at {SHARED_URL}")
    return SHARED_URL


def unique_prefix() -> str:
    return f"test-{uuid.uuid4().hex[:12]}"


def delete_prefix(url: str, prefix: str) -> int:
    """Delete every key under ``prefix`` (SCAN + DEL: other tests' keys are never touched)."""
    import redis

    client = redis.Redis.from_url(url)
    try:
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        if keys:
            client.delete(*keys)
        return len(keys)
    finally:
        client.close()


class PrivateRedis:
    """A ``redis-server`` of this test's own, without persistence, that it may kill."""

    def __init__(self, workdir: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            _missing("redis-server is not installed")
        self.binary = str(binary)
        self.workdir = workdir
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        log = open(self.workdir / f"redis-{self.port}.log", "ab")
        self.proc = subprocess.Popen(
            [
                self.binary,
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--save", "",
                "--appendonly", "no",
                "--dir", str(self.workdir),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        log.close()
        if not poll_until(lambda: _answers(self.url), 10):
            raise RuntimeError("private redis-server did not start")

    def kill(self) -> None:
        """SIGKILL: everything it held is gone (no persistence), as after a crash."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        self.kill()
