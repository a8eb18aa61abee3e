"""A real OpenID provider (oidc-provider 9.13.3 under node) on a free loopback port.

``tests/oidc/provider.mjs`` is the provider; :func:`start_provider` runs it, waits for its
discovery document and returns a handle; the ``oidc_provider_factory`` fixture stops every one
it started. Without node or the pinned package the tests that need it skip, except under
``CI=true``, where a missing provider is a failure rather than a silent gap.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urljoin

import httpx
import pytest

from tests.support.server import free_port
from tests.support.waiting import poll_until

ROOT = Path(__file__).resolve().parent.parent  # tests/
PROVIDER_SCRIPT = ROOT / "oidc" / "provider.mjs"
PACKAGE_DIR = ROOT / "js" / "node_modules" / "oidc-provider"


def require_node_provider() -> str:
    """The node binary, or skip (fail under CI=true) with the reason."""
    node = shutil.which("node")
    reason = None
    if node is None:
        reason = "node is not installed"
    elif not PACKAGE_DIR.is_dir():
        reason = "oidc-provider is not installed: npm ci --prefix tests/js"
    if reason is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"OIDC provider unavailable under CI: {reason}")
        pytest.skip(reason)
    assert node is not None
    return node


@dataclass
class OidcProvider:
    port: int
    client_id: str
    client_secret: str
    proc: subprocess.Popen[bytes]
    log_path: Path

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def drop_id_token(self) -> None:
        """From now on, token responses carry no ``id_token`` (a test-only provider hook)."""
        httpx.post(self.issuer + "/__test/drop-id-token", timeout=5).raise_for_status()

    def log(self) -> str:
        return self.log_path.read_text("utf-8", errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def start_provider(
    workdir: Path,
    redirect_uris: Sequence[str],
    post_logout_redirect_uris: Sequence[str] = (),
    *,
    client_id: str = "collab-test",
    client_secret: str = "collab-test-secret-0123456789",
    timeout: float = 20.0,
) -> OidcProvider:
    node = require_node_provider()
    port = free_port()
    log_path = workdir / f"oidc-provider-{port}.log"
    env = dict(os.environ)
    env.update(
        PORT=str(port),
        CLIENT_ID=client_id,
        CLIENT_SECRET=client_secret,
        REDIRECT_URIS=",".join(redirect_uris),
        POST_LOGOUT_REDIRECT_URIS=",".join(post_logout_redirect_uris),
    )
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [node, str(PROVIDER_SCRIPT)], env=env, stdout=log, stderr=subprocess.STDOUT
        )
    provider = OidcProvider(port, client_id, client_secret, proc, log_path)

    def discoverable() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"oidc-provider exited {proc.returncode}:\n{provider.log()}")
        try:
            url = provider.issuer + "/.well-known/openid-configuration"
            return httpx.get(url, timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    if poll_until(discoverable, timeout):
        return provider
    provider.stop()
    raise RuntimeError(f"oidc-provider did not start:\n{provider.log()}")


@pytest.fixture
def oidc_provider_factory(tmp_path: Path) -> Iterator[Callable[..., OidcProvider]]:
    started: list[OidcProvider] = []

    def make(
        redirect_uris: Sequence[str], post_logout_redirect_uris: Sequence[str] = ()
    ) -> OidcProvider:
        provider = start_provider(tmp_path, redirect_uris, post_logout_redirect_uris)
        started.append(provider)
        return provider

    yield make
    for provider in started:
        provider.stop()


# -- driving the provider's dev login and consent pages without a browser ------------------

_FORM = re.compile(r"<form[^>]*action=\"([^\"]+)\"[^>]*>(.*?)</form>", re.S | re.I)
_HIDDEN = re.compile(r"<input[^>]*type=\"hidden\"[^>]*>", re.I)
_ATTR = re.compile(r"(\w+)=\"([^\"]*)\"")


@dataclass
class ProviderWalk:
    """What following the provider's pages led to: the final redirect or error page."""

    final: httpx.Response
    location: str | None = None
    pages: list[str] = field(default_factory=list)


def walk_provider(
    client: httpx.Client, url: str, stop_at: str, login: str = "alice", max_steps: int = 20
) -> ProviderWalk:
    """Follow redirects and submit the dev login / consent forms until a redirect leaves for
    ``stop_at`` (collab's callback, returned unvisited) or a page has no form to submit."""
    walk = ProviderWalk(final=httpx.Response(0))
    method = "GET"
    data: dict[str, str] | None = None
    for _ in range(max_steps):
        response = client.request(method, url, data=data)
        walk.final = response
        walk.pages.append(f"{method} {url} -> {response.status_code}")
        if response.is_redirect:
            target = urljoin(url, response.headers["location"])
            if target.startswith(stop_at):
                walk.location = target
                return walk
            method, data, url = "GET", None, target
            continue
        form = _FORM.search(response.text)
        if response.status_code != 200 or form is None:
            return walk
        action, inner = form.groups()
        data = {}
        for tag in _HIDDEN.findall(inner):
            attrs = dict(_ATTR.findall(tag))
            if "name" in attrs:
                data[attrs["name"]] = attrs.get("value", "")
        if 'name="login"' in inner:
            data.update(login=login, password="any-password")
        method, url = "POST", urljoin(str(response.url), action)
    raise AssertionError("provider walk did not finish:\n" + "\n".join(walk.pages))
