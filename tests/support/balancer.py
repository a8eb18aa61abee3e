"""A real nginx on loopback running the shipped deploy/nginx-collab-nodes.conf in front of
several nodes, rewritten only for ports, paths and the certificate (``shipped_config``, as for
the one-node file); its access log read back: which node served each request."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import httpx

from tests.support.nginx import NGINX_MAIN, require_nginx, shipped_config
from tests.support.server import free_port
from tests.support.tls import client_context, self_signed
from tests.support.waiting import poll_until

SHIPPED = Path(__file__).resolve().parents[2] / "deploy" / "nginx-collab-nodes.conf"

# The shipped log format: ... "METHOD TARGET PROTOCOL" STATUS ... node=UPSTREAM_ADDR
_LINE = re.compile(r'"(?P<method>\S+) (?P<target>\S+) [^"]*" (?P<status>\d+) .* node=(?P<node>.*)$')


def shipped_nodes_nginx(
    root: Path, nodes: list[int], https: int, http: int, tls: tuple[Path, Path]
) -> str:
    """The shipped file with this machine's ports, paths and certificate: its three upstream
    servers (127.0.0.1:8001-8003) become the ports of ``nodes``."""
    text = shipped_config(SHIPPED, root, https, http, tls)
    ports = {f"800{i + 1}": str(port) for i, port in enumerate(nodes)}
    text, count = re.subn(
        r"(?m)^(\s*server 127\.0\.0\.1:)(800[123])\b", lambda m: m[1] + ports[m[2]], text
    )
    assert count == 3 == len(nodes), "the shipped upstream lists three nodes"
    return text


class Balancer:
    """nginx with the shipped multi-node configuration (TLS, /collab/), restartable on the
    same ports."""

    def __init__(self, root: Path, nodes: list[int]) -> None:
        self.binary = require_nginx()
        self.root = root
        root.mkdir(parents=True)
        self.tls = self_signed(root)
        self.https, self.http = free_port(), free_port()
        conf = shipped_nodes_nginx(root, nodes, self.https, self.http, self.tls)
        (root / "collab.conf").write_text(conf)
        (root / "nginx.conf").write_text(NGINX_MAIN.format(root=root))
        self.context = client_context(self.tls[0])
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        return f"https://127.0.0.1:{self.https}/collab"

    def ws_url(self, room: str, doc: str, token: str) -> str:
        return f"wss://127.0.0.1:{self.https}/collab/ws/{room}/{doc}?token={token}&collab=1"

    def start(self) -> None:
        conf, errors = self.root / "nginx.conf", self.root / "error.log"
        self.proc = subprocess.Popen(
            [self.binary, "-c", str(conf), "-p", str(self.root), "-e", str(errors)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        if not poll_until(self._answering, 15):
            raise RuntimeError(f"nginx did not start: {self.errors()}")

    def _answering(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise RuntimeError(f"nginx exited {self.proc.returncode}: {self.errors()}")
        try:
            # Answered by nginx itself (the shipped file refuses it): no node is asked, so the
            # first request a test sends is the first one nginx routes.
            httpx.get(self.base + "/metrics", verify=self.context, timeout=1)
        except httpx.HTTPError:
            return False
        return True  # any answer: nginx is serving

    def stop(self) -> None:
        """nginx's fast shutdown (SIGTERM): every connection is closed at once."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)

    def errors(self) -> str:
        path = self.root / "error.log"
        return path.read_text() if path.exists() else ""

    def access_log(self) -> str:
        path = self.root / "collab.access.log"
        return path.read_text() if path.exists() else ""

    def nodes_for(self, target: str) -> list[str]:
        """The node(s) each logged request for ``target`` (redacted, as logged) went to, in
        order: ``"127.0.0.1:P"``, or ``"127.0.0.1:P, 127.0.0.1:Q"`` when P failed first."""
        lines = self.access_log().splitlines()
        found = [m for m in map(_LINE.search, lines) if m is not None]
        return [m["node"] for m in found if m["target"] == target]
