"""The identity provider's settings go together. ``oidc_issuer`` without ``oidc_client_id``
started a server whose every sign-in the provider refused (collab sent it client_id=""); a
client id and secret without the issuer started a dev-mode server that ignored them (behind
a proxy: 400 for every request to the public name). Both are refused before anything starts."""

from __future__ import annotations

from pathlib import Path

from tests.support.cli import collab
from tests.support.server import free_port

ISSUER = "https://login.example.com/realms/team"


def test_an_issuer_without_a_client_id_is_refused(tmp_path: Path) -> None:
    serve = collab(
        "serve", "--store", "memory://", "--port", str(free_port()), "--oidc-issuer", ISSUER,
        cwd=tmp_path, timeout=60,
    )  # fmt: skip
    assert serve.returncode == 2, serve.stdout + serve.stderr
    assert serve.stderr.startswith('Error: oidc_client_id = "" (from default): must be set'), (
        serve.stderr
    )
    ok = collab("config", "check", "--oidc-issuer", ISSUER, "--oidc-client-id", "c", cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr


def test_a_client_without_an_issuer_is_refused(tmp_path: Path) -> None:
    env_secret = "client-secret-never-printed-5521"
    check = collab(
        "config", "check", "--oidc-client-id", "collab", "--oidc-client-secret", env_secret,
        cwd=tmp_path,
    )  # fmt: skip
    assert check.returncode == 1, check.stdout + check.stderr
    assert 'problem: oidc_issuer = "" (from default): must be set with oidc_client_id' in (
        check.stderr
    )
    assert env_secret not in check.stdout + check.stderr
