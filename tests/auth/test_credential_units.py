"""Failed-credential budgets, Host names, and the dev token's rules, in-process (issue 8, item 6).

The same rules are attacked over a real server in tests/test_access.py and
tests/auth/test_hosts.py.
"""

from __future__ import annotations

import pytest

from collab.auth.devmode import (
    MIN_DEV_TOKEN_LENGTH,
    DevModeError,
    adopt_dev_token,
    check_dev_bind,
    ensure_dev_user,
    resolve_dev_token,
)
from collab.auth.failures import CredentialGuard, Door
from collab.auth.hosts import HostPolicy, host_name
from collab.errors import TooManyRequests
from collab.meta.memory import MemoryMetaStore
from collab.ratelimit import RateLimiter
from collab.settings import Settings


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Reports:
    def __init__(self) -> None:
        self.seen: list[tuple[str, Door]] = []

    def credential_failed(self, door: Door) -> None:
        self.seen.append(("failed", door))

    def credential_refused(self, door: Door) -> None:
        self.seen.append(("limited", door))


@pytest.mark.anyio
async def test_an_address_gets_its_burst_of_failures_then_429_until_it_refills() -> None:
    clock, reports = Clock(), Reports()
    guard = CredentialGuard(RateLimiter(rate=0.5, burst=3, clock=clock), reports=reports)
    for _ in range(3):
        await guard.check("198.51.100.1", "api")
        await guard.failed("198.51.100.1", "api")
    with pytest.raises(TooManyRequests) as refused:
        await guard.check("198.51.100.1", "socket")
    assert refused.value.http_status == 429 and 0 < refused.value.retry_after <= 2
    await guard.check("198.51.100.2", "api")  # another address has its own budget
    clock.now = 2.0  # one failure refilled
    await guard.check("198.51.100.1", "api")
    assert reports.seen == [("failed", "api")] * 3 + [("limited", "socket")]


def test_host_names_are_read_strictly() -> None:
    assert host_name("LocalHost:8000") == "localhost"
    assert host_name("localhost.") == "localhost"
    assert host_name("[::1]:8000") == "::1"
    assert host_name("127.0.0.1") == "127.0.0.1"
    for bad in (None, "", "evil.example@127.0.0.1", "a b", "::1", "[zz]", "h:1:2", "h:123456"):
        assert host_name(bad) is None, bad


def test_dev_mode_serves_loopback_names_only() -> None:
    policy = HostPolicy.from_settings(Settings())
    for host in ("localhost", "127.0.0.1", "127.3.4.5", "::1"):
        assert policy.allows(host), host
    refused: tuple[str | None, ...] = (
        "attacker.example",
        "10.0.0.1",
        "0.0.0.0",
        "localhost.attacker.example",
        None,
    )
    for name in refused:
        assert not policy.allows(name), name
    behind_proxy = HostPolicy.from_settings(
        Settings(public_url="https://Collab.Example.com/base", allowed_hosts="alt.example")
    )
    for host in ("collab.example.com", "alt.example", "localhost"):
        assert behind_proxy.allows(host), host
    assert not behind_proxy.allows("attacker.example")


def test_with_an_identity_provider_only_the_public_host_and_allowed_hosts() -> None:
    def oidc(allowed_hosts: str) -> HostPolicy:
        return HostPolicy.from_settings(
            Settings(
                oidc_issuer="https://idp.example",
                public_url="https://collab.example.com",
                allowed_hosts=allowed_hosts,
            )
        )

    policy = oidc("[::1]:8000, *.team.example")
    for host in ("collab.example.com", "::1", "a.team.example", "a.b.team.example"):
        assert policy.allows(host), host
    refused: tuple[str | None, ...] = (
        "localhost",
        "127.0.0.1",
        "team.example",
        "collab.example.com.evil",
        None,
    )
    for name in refused:
        assert not policy.allows(name), name
    assert oidc("*").allows("anything")
    # Without a public URL or allowed_hosts the names are unknown: every Host is served.
    assert HostPolicy.from_settings(Settings(oidc_issuer="https://idp.example")).allows("x")


def test_a_fixed_dev_token_needs_a_minimum_length() -> None:
    short = Settings(dev_token="x" * (MIN_DEV_TOKEN_LENGTH - 1))
    for check in (check_dev_bind, resolve_dev_token):
        with pytest.raises(DevModeError, match="COLLAB_DEV_TOKEN") as refused:
            check(short)
        assert "x" * (MIN_DEV_TOKEN_LENGTH - 1) not in str(refused.value)
    assert resolve_dev_token(Settings(dev_token="y" * MIN_DEV_TOKEN_LENGTH)) == "y" * 16
    assert len(resolve_dev_token(Settings())) >= 32
    check_dev_bind(Settings(dev_token="short", oidc_issuer="https://idp.example"))  # unused


@pytest.mark.anyio
async def test_a_new_dev_token_revokes_what_the_old_one_minted() -> None:
    meta = MemoryMetaStore()
    dev = await ensure_dev_user(meta)
    assert not await adopt_dev_token(meta, dev.id, "first-dev-token-value")
    _, session = await meta.create_session(dev.id, 3600)
    _, api_token = await meta.create_api_token(dev.id, "script")
    assert not await adopt_dev_token(meta, dev.id, "first-dev-token-value")  # a restart
    assert await meta.get_session(session) is not None
    assert await meta.find_api_token(api_token) is not None
    assert await adopt_dev_token(meta, dev.id, "second-dev-token-value")
    assert await meta.get_session(session) is None
    assert await meta.find_api_token(api_token) is None
    events = await meta.list_audit()
    assert events[0].action == "dev_token.changed"
    assert events[0].detail == {"sessions_revoked": 1, "api_tokens_revoked": 1}
    stored = await meta.cache_get("collab:dev_token_digest")
    assert stored is not None and "second-dev-token-value" not in stored
