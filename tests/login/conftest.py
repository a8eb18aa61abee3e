from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.oidcprovider import OidcProvider, oidc_provider_factory
from tests.support.server import CollabServer

__all__ = ["oidc_provider_factory"]


@dataclass
class OidcSetup:
    server: CollabServer
    provider: OidcProvider

    @property
    def callback_url(self) -> str:
        return self.server.http_url + "/auth/callback"


@pytest.fixture
def oidc_setup_factory(
    tmp_path: Path, oidc_provider_factory: Callable[..., OidcProvider]
) -> Iterator[Callable[..., OidcSetup]]:
    """A collab server configured with a real provider that knows its callback URL."""
    servers: list[CollabServer] = []

    def make(**settings: object) -> OidcSetup:
        workdir = tmp_path / f"collab{len(servers)}"
        workdir.mkdir()
        server = CollabServer(workdir)
        provider = oidc_provider_factory(
            [server.http_url + "/auth/callback"], [server.http_url + "/"]
        )
        server.settings.update(
            oidc_issuer=provider.issuer,
            oidc_client_id=provider.client_id,
            oidc_client_secret=provider.client_secret,
            public_url=server.http_url,
            **settings,
        )
        servers.append(server)
        server.start()
        return OidcSetup(server, provider)

    yield make
    for server in servers:
        server.stop()


@pytest.fixture
def oidc_setup(oidc_setup_factory: Callable[..., OidcSetup]) -> OidcSetup:
    return oidc_setup_factory(admins="alice@example.test")
