"""PostgreSQL for tests: a fresh database per test on the shared server, or a private cluster
for the tests that crash one.

The shared server (PostgreSQL 15 on 127.0.0.1:5432, trust auth, user ``postgres``; another
with ``COLLAB_TEST_POSTGRES=postgresql://...``) is never stopped, paused or reconfigured by a
test: each test gets a database of its own with a random name (``fresh_database``), dropped
at teardown with whatever connections are still open on it. Without a reachable server the
test is skipped with the reason, except under ``CI=true``, where that is a failure (CI
provides the server). Fixtures: ``pg_url`` (migrated) and ``pg_empty_url`` (nothing applied),
in tests/conftest.py.

``PrivateCluster`` is a cluster of the test's own (``initdb`` + ``pg_ctl`` in a temporary
directory, a free port, its socket in that directory) for tests that kill, restart or stop
PostgreSQL. ``initdb`` and ``pg_ctl`` refuse to run as root, so under root they run as the
``postgres`` user (``runuser``) in a directory it owns.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import NoReturn
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from psycopg import sql
from psycopg.rows import TupleRow

from collab.db.pgmigrate import migrate
from tests.support.server import free_port

SHARED_ENV = "COLLAB_TEST_POSTGRES"
SHARED_DEFAULT = "postgresql://postgres@127.0.0.1:5432/postgres"
PG_BIN = Path("/usr/lib/postgresql/15/bin")


def shared_admin_url() -> str:
    """The maintenance database of the shared server (where databases are created)."""
    return os.environ.get(SHARED_ENV, SHARED_DEFAULT)


def with_database(url: str, name: str) -> str:
    """``url`` naming the database ``name`` instead of its own."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


def unavailable(reason: str) -> NoReturn:
    """Skip the test for ``reason``; under ``CI=true`` fail it instead."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"PostgreSQL tests must run on CI: {reason}")
    pytest.skip(reason)


def _admin_connection(url: str) -> psycopg.Connection[TupleRow]:
    try:
        return psycopg.connect(url, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        unavailable(f"PostgreSQL is not reachable at {url}: {str(exc).strip()}")


@contextlib.contextmanager
def fresh_database(admin_url: str | None = None, *, migrated: bool = True) -> Iterator[str]:
    """A new, empty database on the server (``migrated``: with collab's migrations applied);
    its URL. Dropped afterwards, with any connection still open on it."""
    admin_url = admin_url or shared_admin_url()
    name = "collab_test_" + secrets.token_hex(6)
    with _admin_connection(admin_url) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = with_database(admin_url, name)
    try:
        if migrated:
            migrate(url)
        yield url
    finally:
        with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


class PrivateCluster:
    """A PostgreSQL cluster of one test's own, on a free loopback port; ``stop`` it any way
    (``immediate`` is a crash: no checkpoint, recovery at the next start), ``start`` it again
    on the same port and data. ``remove`` stops it and deletes everything."""

    def __init__(self) -> None:
        if not (PG_BIN / "initdb").exists():
            unavailable(f"no PostgreSQL server binaries in {PG_BIN}")
        self.root = Path(tempfile.mkdtemp(prefix="collab-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "log"
        self.port = free_port()
        self._as_root = os.geteuid() == 0
        if self._as_root:
            shutil.chown(self.root, "postgres", "postgres")
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync")
        self.running = False

    @property
    def admin_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, tool: str, *args: str, timeout: float = 60) -> None:
        command = [str(PG_BIN / tool), *args]
        if self._as_root:
            command = ["runuser", "-u", "postgres", "--", *command]
        result = subprocess.run(
            command, cwd=self.root, capture_output=True, text=True, timeout=timeout, check=False
        )
        if result.returncode != 0:
            raise RuntimeError(f"{tool} failed ({result.returncode}): {result.stderr.strip()}")

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=on"
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.log), "-w", "start")
        self.running = True

    def stop(self, mode: str = "fast") -> None:
        """``fast`` (a clean shutdown) or ``immediate`` (a crash)."""
        if self.running:
            self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")
            self.running = False

    def remove(self) -> None:
        with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


@contextlib.contextmanager
def private_cluster() -> Iterator[PrivateCluster]:
    """A started ``PrivateCluster``, removed afterwards whatever happened."""
    cluster = PrivateCluster()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.remove()


def sessions_waiting(url: str, n: int) -> Callable[[], Awaitable[bool]]:
    """Whether exactly ``n`` sessions of the database wait for a lock (for ``wait_until``: a
    race test holds one transaction open until the other side is seen waiting on it)."""

    async def check() -> bool:
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as probe:
            cur = await probe.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND wait_event_type = 'Lock'"
            )
            row = await cur.fetchone()
            return row is not None and row[0] == n

    return check
