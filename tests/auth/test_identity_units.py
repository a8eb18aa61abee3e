"""Secret keys, admins, the dev-token check and log redaction, without a server."""

from __future__ import annotations

import logging
import stat
from pathlib import Path
from types import SimpleNamespace

import pytest

from collab.auth.admins import is_admin
from collab.auth.devmode import DevModeError, check_dev_bind, is_dev_token, is_loopback_host
from collab.auth.keys import KEY_FILE, SecretKeyError, load_secret_keys
from collab.auth.redact import RedactQueryStrings, redact_url
from collab.meta import User
from collab.settings import Settings


def test_secret_key_generated_once_into_the_data_dir(tmp_path: Path) -> None:
    settings = Settings(store=f"sqlite:///{tmp_path / 'data' / 'collab.db'}")
    first = load_secret_keys(settings)
    key_file = tmp_path / "data" / KEY_FILE
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert load_secret_keys(settings) == first  # never per start
    assert len(first) == 1 and len(first[0]) >= 32


def test_secret_key_list_rotates(tmp_path: Path) -> None:
    settings = Settings(
        store=f"sqlite:///{tmp_path / 'c.db'}",
        secret_key="new-key-0123456789abcdef, old-key-0123456789abcdef",
    )
    assert load_secret_keys(settings) == ["new-key-0123456789abcdef", "old-key-0123456789abcdef"]
    assert not (tmp_path / KEY_FILE).exists()
    with pytest.raises(SecretKeyError):
        load_secret_keys(Settings(secret_key="short"))


def test_memory_store_key_lives_in_the_process() -> None:
    assert load_secret_keys(Settings(store="memory://")) != load_secret_keys(
        Settings(store="memory://")
    )


def _user(**kw: object) -> User:
    fields: dict[str, object] = {"id": "u1", "issuer": "https://idp.example", "subject": "248"}
    fields.update(kw)
    return User(**fields)  # type: ignore[arg-type]


def test_admins_by_verified_email_or_issuer_sub() -> None:
    settings = Settings(admins="Alice@Example.com, https://idp.example:248 ,collab:dev:dev")
    assert is_admin(_user(subject="248"), settings)
    assert is_admin(_user(subject="1", email="alice@example.com", email_verified=True), settings)
    assert not is_admin(_user(subject="1", email="alice@example.com"), settings)  # unverified
    assert not is_admin(_user(subject="2480"), settings)
    assert not is_admin(_user(issuer="https://other.example"), settings)
    assert not is_admin(_user(disabled=True), settings)
    assert is_admin(_user(issuer="collab:dev", subject="dev"), settings)
    assert not is_admin(_user(), Settings())


def test_dev_token_check() -> None:
    state = SimpleNamespace(dev_token="t0ken-value", settings=Settings())
    assert is_dev_token(state, "t0ken-value")
    assert not is_dev_token(state, "t0ken-valuE")
    assert not is_dev_token(state, "")
    assert not is_dev_token(state, None)
    assert not is_dev_token(SimpleNamespace(dev_token="", settings=Settings()), "")
    assert is_dev_token(Settings(dev_token="fixed"), "fixed")
    assert not is_dev_token(Settings(), "")
    oidc = Settings(dev_token="fixed", oidc_issuer="https://idp.example")
    assert not is_dev_token(oidc, "fixed")
    assert not is_dev_token(SimpleNamespace(dev_token="fixed", settings=oidc), "fixed")


def test_dev_bind_check() -> None:
    for host in ("127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"):
        assert is_loopback_host(host), host
        check_dev_bind(Settings(host=host))
    for host in ("0.0.0.0", "::", "10.0.0.1", "example.com"):
        with pytest.raises(DevModeError, match="loopback"):
            check_dev_bind(Settings(host=host))
    check_dev_bind(Settings(host="0.0.0.0", oidc_issuer="https://idp.example"))


def test_query_strings_redacted_from_uvicorn_lines() -> None:
    assert redact_url("/login?token=abc") == "/login?token=***"
    assert redact_url("/auth/callback?code=c&state=s&iss=x") == (
        "/auth/callback?code=***&state=***&iss=***"
    )
    assert redact_url("/healthz") == "/healthz"
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5", "GET", "/ws/r/d?token=secret", "1.1", 101),
        None,
    )
    assert RedactQueryStrings().filter(record)
    assert "secret" not in record.getMessage() and "/ws/r/d?token=***" in record.getMessage()


def test_id_token_claims_checked_for_issuer_audience_and_expiry() -> None:
    import time

    from authlib.oidc.core import CodeIDToken
    from joserfc.errors import JoseError

    from collab.auth.oidc import _claims_options

    settings = Settings(oidc_issuer="https://idp.example", oidc_client_id="collab")
    metadata = {"issuer": "https://idp.example"}
    now = int(time.time())
    good = {"iss": "https://idp.example", "sub": "1", "aud": "collab", "iat": now, "exp": now + 60}

    def check(drop: str = "", **changes: object) -> None:
        claims = {k: v for k, v in {**good, **changes}.items() if k != drop}
        options = _claims_options(settings, metadata)
        CodeIDToken(claims, {"alg": "RS256"}, options, {"client_id": "collab"}).validate()

    check()
    check(aud=["collab", "other"], azp="collab")
    for bad in (
        {"aud": "another-client"},
        {"iss": "https://attacker.example"},
        {"exp": now - 3600},
    ):
        with pytest.raises(JoseError):
            check(**bad)
    for claim in ("sub", "aud", "exp", "iss"):
        with pytest.raises(JoseError):
            check(drop=claim)
