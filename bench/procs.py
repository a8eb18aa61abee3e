"""Processes of a benchmark run: the server under test and the node load-generator workers.

Every process is started on loopback, pinned to its cores when the machine has at least two
(server on the first, load generators on the rest), and killed by ``close()``; the runner calls
``close()`` from ``finally`` blocks, so Ctrl-C leaves nothing behind.
"""

from __future__ import annotations

import json
import os
import queue
import resource
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import psutil

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
PYTHON = sys.executable
NODE = "node"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Cores:
    """Which CPUs the server and the load generators may use (None: no pinning)."""

    server: frozenset[int] | None
    load: frozenset[int] | None

    @classmethod
    def split(cls, pin: bool) -> Cores:
        available = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
        if not pin or len(available) < 2:
            return cls(None, None)
        return cls(frozenset(available[:1]), frozenset(available[1:]))

    @property
    def load_count(self) -> int:
        return len(self.load) if self.load else os.cpu_count() or 1

    def describe(self) -> str:
        if self.server is None:
            return "not pinned"
        return (
            f"server on CPU {sorted(self.server)}, load generators on CPU {sorted(self.load or [])}"
        )


MAX_FDS = 1 << 20  # what the soft limit is raised to at most where the hard one is unlimited


def fd_limit() -> int:
    """Open files a child process may have: the hard limit its soft one is raised to."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return MAX_FDS if hard == resource.RLIM_INFINITY else min(hard, MAX_FDS)


def _child_setup(cpus: frozenset[int] | None) -> Callable[[], None]:
    """Runs in every child before it starts: pinned to ``cpus`` (None: not pinned), and its
    soft limit of open files raised to the hard one (10,000 sockets take 10,000 descriptors
    in the server and as many over the load generators; a soft limit of 1,024 is common)."""

    def setup() -> None:
        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (fd_limit(), hard))
        if cpus is not None:
            os.sched_setaffinity(0, cpus)

    return setup


@dataclass(frozen=True)
class ServerSpec:
    name: str
    client: str  # 'y-websocket' or 'hocuspocus': which provider the load generator uses
    persistent: bool  # has a store: the cold workload applies
    relay: bool  # answers no SyncStep1: clients wait for 'connected', not 'synced'
    command: Callable[[int, Path, bool], list[str]]  # (port, data dir, deflate) -> argv
    env: dict[str, str] | None = None
    params: dict[str, str] | None = None  # query parameters of every client's socket URL
    chat_api: bool = False  # has collab's chat (rooms made through the API, posts, type 101)
    metrics: str | None = None  # path of a Prometheus exposition with collab's commit timings


# collab runs in dev mode (no identity provider): its sockets need the dev token.
DEV_TOKEN = "bench-dev-token-0001"  # at least 16 characters (issue 8: dev token minimum)


def _pythonpath(tree: Path) -> str:
    """``tree`` first on the path: ``python -m collab`` imports the collab checked out there."""
    return os.pathsep.join([str(tree), *filter(None, [os.environ.get("PYTHONPATH")])])


def _collab(port: int, data: Path, deflate: bool, memory: bool = False) -> list[str]:
    flag = "--ws-per-message-deflate" if deflate else "--no-ws-per-message-deflate"
    store = "memory://" if memory else f"sqlite:///{data / 'collab.db'}"
    return [
        PYTHON,
        "-m",
        "collab",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--store",
        store,
        flag,
        "--log-level",
        "warning",
    ]


def _node(script: str, data_name: str | None) -> Callable[[int, Path, bool], list[str]]:
    def command(port: int, data: Path, deflate: bool) -> list[str]:
        argv = [NODE, str(BENCH / "servers" / script), "--port", str(port)]
        if data_name:
            argv += ["--data", str(data / data_name)]
        return argv + (["--deflate"] if deflate else [])

    return command


def _python(script: str, data_name: str | None) -> Callable[[int, Path, bool], list[str]]:
    def command(port: int, data: Path, deflate: bool) -> list[str]:
        argv = [PYTHON, str(BENCH / "servers" / script), "--port", str(port)]
        if data_name:
            argv += ["--data", str(data / data_name)]
        return argv + (["--deflate"] if deflate else [])

    return command


SERVERS: dict[str, ServerSpec] = {
    spec.name: spec
    for spec in [
        ServerSpec("node-relay", "y-websocket", False, True, _node("node_relay.mjs", None)),
        ServerSpec("uvicorn-relay", "y-websocket", False, True, _python("uvicorn_relay.py", None)),
        ServerSpec(
            "collab",
            "y-websocket",
            True,
            False,
            _collab,
            # Every load-generator client connects from 127.0.0.1 as the one dev user: lift
            # the per-address and per-user caps meant for real clients.
            env={
                # The code of the checkout this runner belongs to, whatever the venv points at.
                "PYTHONPATH": _pythonpath(ROOT),
                "COLLAB_DEV_TOKEN": DEV_TOKEN,
                "COLLAB_HANDSHAKE_RATE": "100000",
                "COLLAB_HANDSHAKE_BURST": "100000",
                "COLLAB_MAX_CONNECTIONS_PER_USER": "100000",
                # The sockets workload opens 10,000 at once (the default cap is 10,000).
                "COLLAB_MAX_CONNECTIONS": "100000",
                "COLLAB_MAX_ROOMS_PER_USER": "100000",
                "COLLAB_CONN_MESSAGES_PER_SECOND": "100000",
                "COLLAB_CONN_MESSAGE_BURST": "100000",
                # The docsize workload writes up to 64 MB on one socket as fast as it drains.
                "COLLAB_CONN_BYTES_PER_SECOND": "1000000000",
                "COLLAB_CONN_BYTE_BURST": "1000000000",
                "COLLAB_OVERLOAD_LAG_SECONDS": "0",
                # The chat workload: the one dev user creates every room (POST /rooms) and
                # makes every post of every room (default: 1 room/s, 10 chat writes/s).
                "COLLAB_API_CREATE_RATE": "100000",
                "COLLAB_API_CREATE_BURST": "100000",
                "COLLAB_CHAT_WRITE_RATE": "100000",
                "COLLAB_CHAT_WRITE_BURST": "100000",
            },
            params={"token": DEV_TOKEN},
            chat_api=True,
            metrics="/metrics",
        ),
        ServerSpec(
            "y-websocket", "y-websocket", True, False, _node("y_websocket_server.mjs", "leveldb")
        ),
        ServerSpec(
            "hocuspocus", "hocuspocus", True, False, _node("hocuspocus.mjs", "hocuspocus.sqlite")
        ),
        ServerSpec(
            "pycrdt-websocket", "y-websocket", True, False, _python("pycrdt_ws.py", "ystore.db")
        ),
    ]
}


# Not in a run unless named (``--servers collab,collab-memory``): collab on ``memory://``, every
# update held in the process and none committed to disk, which no deployment does. It measures
# what collab's update path costs without its durable commit (bench/commit_floor.py), for
# issue 11's CPU targets; it is never compared against a target.
OPTIONAL: dict[str, ServerSpec] = {
    "collab-memory": replace(
        SERVERS["collab"],
        name="collab-memory",
        command=lambda port, data, deflate: _collab(port, data, deflate, memory=True),
        chat_api=False,
    )
}


def collab_at(tree: Path, name: str) -> ServerSpec:
    """collab started exactly as SERVERS["collab"] (same interpreter, flags, token and lifted
    caps), but importing the code checked out at ``tree`` (a worktree of an earlier commit)."""
    spec = SERVERS["collab"]
    return replace(spec, name=name, env={**(spec.env or {}), "PYTHONPATH": _pythonpath(tree)})


def server_env(spec: ServerSpec) -> dict[str, str]:
    """The environment a server of ``spec`` is started with."""
    return dict(os.environ, **(spec.env or {}))


def imported_collab(spec: ServerSpec) -> Path:
    """The collab package directory a process started like ``spec`` imports (same interpreter,
    environment and working directory)."""
    probe = [PYTHON, "-c", "import collab; print(collab.__file__)"]
    out = subprocess.run(
        probe, cwd=BENCH, env=server_env(spec), capture_output=True, text=True, check=True
    )
    return Path(out.stdout.strip()).resolve().parent


def process_cpu_seconds(proc: psutil.Process) -> float:
    """CPU time (s) ``proc`` has used: every thread, the ones that have exited included.

    psutil's user + system come from /proc/<pid>/stat in clock ticks (10 ms): a low-rate
    latency point uses 2-3 ticks in its window, so its CPU per update was mostly rounding.
    Linux gives the same total in nanoseconds as the process's CPU clock, readable from
    another process (glibc's ``clock_getcpuclockid``: clock id ``(~pid << 3) | 2``,
    CPUCLOCK_SCHED, the scheduler's sum_exec_runtime of the thread group). The alternatives
    measured on this kernel (6.18) against psutil over a 9 s busy window of a process whose
    threads start and exit (psutil 6.77 s): this clock 6.768 s; /proc/<pid>/schedstat 2.287 s
    (the main thread's alone, not the process's); the sum of /proc/<pid>/task/*/schedstat
    2.418 s (threads that exited between two readings are lost). Elsewhere (no such clock,
    or not allowed): psutil's ticks."""
    if sys.platform == "linux":
        try:
            return time.clock_gettime_ns(((~proc.pid) << 3) | 2) / 1e9
        except OSError:
            if not proc.is_running():
                raise psutil.NoSuchProcess(proc.pid) from None
    times = proc.cpu_times()
    return float(times.user + times.system)


class ServerProcess:
    """One server under test on a free loopback port with its own data directory."""

    def __init__(self, spec: ServerSpec, data: Path, deflate: bool, cores: Cores) -> None:
        self.spec = spec
        self.data = data
        self.deflate = deflate
        self.cores = cores
        self.port = free_port()
        self.log_path = data / "server.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.ps: psutil.Process | None = None
        data.mkdir(parents=True, exist_ok=True)

    @property
    def ws_base(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    @property
    def api_base(self) -> str:
        """collab's HTTP API (servers with ``chat_api``)."""
        return f"http://127.0.0.1:{self.port}/api/v1"

    def start(self, timeout: float = 30.0) -> None:
        argv = self.spec.command(self.port, self.data, self.deflate)
        env = server_env(self.spec)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                argv,
                cwd=BENCH,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                preexec_fn=_child_setup(self.cores.server),
            )
        self.ps = psutil.Process(self.proc.pid)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.spec.name} exited {self.proc.returncode}: {self.log()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"{self.spec.name} did not listen within {timeout} s: {self.log()}")

    def alive(self) -> bool:
        """Still running (a failed point of a live server costs that point only)."""
        return self.proc is not None and self.proc.poll() is None

    def _tree(self) -> list[psutil.Process]:
        assert self.ps is not None
        try:
            return [self.ps, *self.ps.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def cpu_seconds(self) -> float:
        """CPU time (s) the server's process tree has used so far, to the nanosecond where
        the kernel offers it (``process_cpu_seconds``)."""
        total = 0.0
        for proc in self._tree():
            try:
                total += process_cpu_seconds(proc)
            except psutil.NoSuchProcess:
                pass
        return total

    def commit_totals(self) -> tuple[float, float] | None:
        """(seconds, count) of collab's group commits so far (``collab_store_commit_seconds``
        from its /metrics); None for a server without them or when the scrape fails."""
        found = self.scrape(
            ("collab_store_commit_seconds_sum", "collab_store_commit_seconds_count")
        )
        if len(found) != 2:
            return None
        return found["collab_store_commit_seconds_sum"], found["collab_store_commit_seconds_count"]

    def scrape(self, names: tuple[str, ...]) -> dict[str, float]:
        """The unlabelled samples ``names`` of collab's /metrics that it holds; empty for a
        server without them or when the scrape fails."""
        if self.spec.metrics is None:
            return {}
        url = f"http://127.0.0.1:{self.port}{self.spec.metrics}"
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                text = response.read().decode("utf-8")
        except OSError:
            return {}
        found: dict[str, float] = {}
        for line in text.splitlines():
            name, _, value = line.partition(" ")
            if name in names:
                found[name] = float(value)
        return found

    def rss_bytes(self) -> int:
        total = 0
        for proc in self._tree():
            try:
                total += proc.memory_info().rss
            except psutil.NoSuchProcess:
                pass
        return total

    def stop(self, graceful: bool = True, timeout: float = 30.0) -> None:
        """SIGTERM (a clean shutdown: the server may flush), SIGKILL past the timeout."""
        if self.proc is None or self.proc.poll() is not None:
            return
        if graceful:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
                return
            except subprocess.TimeoutExpired:
                pass
        self.proc.kill()
        self.proc.wait(10)

    def restart(self) -> None:
        self.stop(graceful=True)
        self.start()

    def log(self, tail: int = 2000) -> str:
        if not self.log_path.exists():
            return ""
        return self.log_path.read_text("utf-8", errors="replace")[-tail:]


class WorkerError(RuntimeError):
    pass


class Worker:
    """One node load-generator process (bench/load/worker.mjs) speaking JSON lines."""

    def __init__(self, kind: str, ws_base: str, cores: Cores, params: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [
                NODE,
                "--expose-gc",
                str(BENCH / "load" / "worker.mjs"),
                kind,
                ws_base,
                json.dumps(params),
            ],
            cwd=BENCH,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            preexec_fn=_child_setup(cores.load),
            text=True,
            bufsize=1,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.next_id = 0
        threading.Thread(target=self._read, daemon=True).start()
        ready = self._line(20.0)
        if json.loads(ready).get("event") != "ready":
            raise WorkerError(f"worker did not start: {ready}")

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def _line(self, timeout: float) -> str:
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty as exc:
            raise WorkerError(f"worker silent for {timeout:.0f} s") from exc
        if line is None:
            raise WorkerError(f"worker exited ({self.proc.poll()})")
        return line

    def send(self, op: str, **args: Any) -> int:
        self.next_id += 1
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"id": self.next_id, "op": op, **args}) + "\n")
        self.proc.stdin.flush()
        return self.next_id

    def result(self, request_id: int, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            line = self._line(max(0.1, deadline - time.monotonic()))
            message = json.loads(line)
            if message.get("id") != request_id:
                continue
            if not message["ok"]:
                raise WorkerError(message["error"].splitlines()[0])
            return dict(message["result"])

    def call(self, op: str, timeout: float = 120.0, **args: Any) -> dict[str, Any]:
        return self.result(self.send(op, **args), timeout)

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.send("exit")
                self.proc.wait(5)
            except (OSError, subprocess.TimeoutExpired, ValueError):
                self.proc.kill()
                self.proc.wait(5)


class WorkerPool:
    """Several workers; an op runs on all of them at once, each with its own arguments."""

    def __init__(self, count: int, server: ServerProcess, cores: Cores) -> None:
        self.workers: list[Worker] = []
        try:
            for _ in range(count):
                spec = server.spec
                self.workers.append(Worker(spec.client, server.ws_base, cores, spec.params or {}))
        except BaseException:
            self.close()
            raise

    def __len__(self) -> int:
        return len(self.workers)

    def run(
        self, op: str, args: Sequence[dict[str, Any]], timeout: float = 120.0
    ) -> list[dict[str, Any]]:
        """Sends ``op`` with args[i] to worker i (as many workers as args), then collects."""
        ids = [w.send(op, **a) for w, a in zip(self.workers, args, strict=False)]
        return [w.result(i, timeout) for w, i in zip(self.workers, ids, strict=False)]

    def close(self) -> None:
        for worker in self.workers:
            worker.close()
