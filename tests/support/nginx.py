"""A real nginx on loopback in front of a collab server (Debian's package, run as a child)."""

from __future__ import annotations

import os
import shutil
import ssl
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.support.server import free_port
from tests.support.tls import client_context, self_signed
from tests.support.waiting import poll_until

NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)


def require_nginx() -> str:
    if NGINX is None:
        if os.environ.get("CI") == "true":
            pytest.fail("nginx is required under CI=true (scripts/test installs it)")
        pytest.skip("nginx is not installed (apt-get install nginx)")
    return NGINX


CONFIG = """
daemon off;
worker_processes 1;
pid {root}/nginx.pid;
error_log {root}/error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log {root}/access.log;
    client_body_temp_path {root}/body;
    proxy_temp_path {root}/proxy;
    fastcgi_temp_path {root}/fastcgi;
    uwsgi_temp_path {root}/uwsgi;
    scgi_temp_path {root}/scgi;
    map $http_upgrade $connection_upgrade {{ default upgrade; '' close; }}
    server {{
        listen 127.0.0.1:{port}{ssl};
        {tls}
        location {prefix} {{
            proxy_pass http://127.0.0.1:{upstream}/;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For {forwarded_for};
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_read_timeout 3600s;
        }}
    }}
}}
"""


class Nginx:
    def __init__(
        self,
        root: Path,
        upstream_port: int,
        *,
        prefix: str = "/",
        tls: tuple[Path, Path] | None = None,
        forwarded_for: str = "$proxy_add_x_forwarded_for",
    ) -> None:
        """``prefix`` is the sub-path nginx serves collab under (stripped before proxying);
        ``tls`` a (certificate, key) pair to terminate TLS at nginx."""
        self.root = root
        self.port = free_port()
        self.upstream_port = upstream_port
        self.prefix = prefix
        self.tls = tls
        self.forwarded_for = forwarded_for
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def origin(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    @property
    def http_url(self) -> str:
        return self.origin + self.prefix.rstrip("/")

    @property
    def ws_base(self) -> str:
        scheme = "wss" if self.tls else "ws"
        return f"{scheme}://127.0.0.1:{self.port}{self.prefix.rstrip('/')}/ws"

    def start(self) -> None:
        binary = require_nginx()
        self.root.mkdir(parents=True, exist_ok=True)
        conf = self.root / "nginx.conf"
        tls = ""
        if self.tls:
            cert, key = self.tls
            tls = f"ssl_certificate {cert}; ssl_certificate_key {key};"
        conf.write_text(
            CONFIG.format(
                root=self.root,
                port=self.port,
                upstream=self.upstream_port,
                ssl=" ssl" if self.tls else "",
                tls=tls,
                prefix=self.prefix,
                forwarded_for=self.forwarded_for,
            )
        )
        self.proc = subprocess.Popen(
            [binary, "-c", str(conf), "-p", str(self.root), "-e", str(self.root / "error.log")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        if not poll_until(self._answering, 10):
            raise RuntimeError("nginx did not start")

    def _answering(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            error_log = self.root / "error.log"
            log = error_log.read_text() if error_log.exists() else ""
            raise RuntimeError(f"nginx exited {self.proc.returncode}: {log}")
        verify: ssl.SSLContext | bool = True
        if self.tls:
            verify = ssl.create_default_context(cafile=str(self.tls[0]))
        try:
            httpx.get(self.http_url + "/healthz", timeout=1, verify=verify)
        except httpx.HTTPError:
            return False
        return True  # any answer: nginx is serving (collab behind it may not be)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


SHIPPED_NGINX = Path(__file__).resolve().parents[2] / "deploy" / "nginx-collab.conf"
NGINX_MAIN = """
daemon off;
worker_processes 1;
pid {root}/nginx.pid;
error_log {root}/error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log {root}/default.access.log;  # what nginx.conf's http{{}} sets on Debian
    client_body_temp_path {root}/body;
    proxy_temp_path {root}/proxy;
    fastcgi_temp_path {root}/fastcgi;
    uwsgi_temp_path {root}/uwsgi;
    scgi_temp_path {root}/scgi;
    include {root}/collab.conf;
}}
"""


def shipped_config(
    path: Path,
    root: Path,
    https: int,
    http: int,
    tls: tuple[Path, Path],
    more: tuple[tuple[str, str], ...] = (),
) -> str:
    """A shipped deploy/ nginx file with this machine's ports, log folder and certificate (and
    the ``more`` replacements), each of which must be in it."""
    text = path.read_text("utf-8")
    for old, new in (
        ("listen 443 ssl;", f"listen 127.0.0.1:{https} ssl;"),
        ("listen [::]:443 ssl;", ""),
        ("listen 80;", f"listen 127.0.0.1:{http};"),
        ("listen [::]:80;", ""),
        ("/etc/letsencrypt/live/collab.example.com/fullchain.pem", str(tls[0])),
        ("/etc/letsencrypt/live/collab.example.com/privkey.pem", str(tls[1])),
        *more,
    ):
        assert old in text, old
        text = text.replace(old, new)
    return text.replace("/var/log/nginx/", f"{root}/")


def shipped_nginx(root: Path, upstream: int, https: int, http: int, tls: tuple[Path, Path]) -> str:
    """deploy/nginx-collab.conf as shipped, in front of the server on ``upstream``."""
    upstream_url = ("http://127.0.0.1:8000/", f"http://127.0.0.1:{upstream}/")
    return shipped_config(SHIPPED_NGINX, root, https, http, tls, (upstream_url,))


@dataclass
class Shipped:
    """The shipped nginx running: its folder (logs in it), ports and certificate."""

    root: Path
    https: int
    http: int
    tls: tuple[Path, Path]

    @property
    def base(self) -> str:
        """collab's root through nginx (the shipped file serves it under /collab)."""
        return f"https://127.0.0.1:{self.https}/collab"

    def client(self, timeout: float = 5, headers: dict[str, str] | None = None) -> httpx.Client:
        return httpx.Client(verify=client_context(self.tls[0]), timeout=timeout, headers=headers)


@contextmanager
def shipped_nginx_running(tmp_path: Path, upstream: int) -> Iterator[Shipped]:
    """deploy/nginx-collab.conf as shipped in front of the server on ``upstream``, once it
    answers; stopped (its logs flushed) on the way out."""
    binary = require_nginx()
    root = tmp_path / "nginx"
    root.mkdir()
    tls = self_signed(root)
    shipped = Shipped(root, free_port(), free_port(), tls)
    (root / "collab.conf").write_text(
        shipped_nginx(root, upstream, shipped.https, shipped.http, tls)
    )
    (root / "nginx.conf").write_text(NGINX_MAIN.format(root=root))
    proc = subprocess.Popen(
        [binary, "-c", str(root / "nginx.conf"), "-p", str(root), "-e", str(root / "error.log")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    try:
        with shipped.client(timeout=1) as client:

            def answering() -> bool:
                assert proc.poll() is None, (root / "error.log").read_text()
                try:
                    client.get(f"{shipped.base}/healthz")
                except httpx.HTTPError:
                    return False
                return True

            if not poll_until(answering, 15):
                raise RuntimeError(f"nginx did not start: {(root / 'error.log').read_text()}")
        yield shipped
    finally:
        proc.terminate()
        proc.wait(10)
