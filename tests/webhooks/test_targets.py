"""Done 3 of issue 14: what a webhook may be sent to. With an empty allow-list, loopback,
private, link-local (the cloud metadata address), shared and reserved addresses are refused,
literally or behind a name, and so is any name that resolves to one of them among others."""

from __future__ import annotations

import ipaddress

import pytest

from collab.webhooks.targets import (
    TargetRefused,
    address_refusal,
    check_url,
    parse_networks,
    resolve,
)

pytestmark = pytest.mark.anyio

REFUSED = [
    "https://127.0.0.1/hook",
    "https://127.8.9.10/hook",
    "https://10.1.2.3/hook",
    "https://172.16.0.1/hook",
    "https://192.168.1.1/hook",
    "https://169.254.169.254/latest/meta-data/",
    "https://100.100.100.200/",  # a cloud's metadata in the shared range
    "https://[::1]/hook",
    "https://[fe80::1]/hook",
    "https://[fd00:ec2::254]/",  # IPv6 metadata, a unique local address
    "https://[::ffff:127.0.0.1]/hook",  # IPv4-mapped loopback
    "https://[64:ff9b::a00:1]/hook",  # NAT64 of 10.0.0.1
    "https://[2002:7f00:1::]/hook",  # 6to4 of 127.0.0.1
    "https://0.0.0.0/hook",
    "https://224.0.0.1/hook",
    "https://240.0.0.1/hook",
]


def resolver_for(table: dict[str, list[str]]):  # type: ignore[no-untyped-def]
    async def resolver(host: str, port: int) -> list[str]:
        if host not in table:
            raise OSError(8, "nodename nor servname provided")
        return table[host]

    return resolver


@pytest.mark.parametrize("url", REFUSED)
async def test_non_public_addresses_are_refused(url: str) -> None:
    with pytest.raises(TargetRefused, match="not a public address"):
        await resolve(url, allow_http=False, allowed=[])


async def test_names_are_resolved_and_every_address_checked() -> None:
    table = {
        "localhost.example": ["127.0.0.1"],
        "mixed.example": ["93.184.215.14", "10.0.0.7"],  # rebinding: one public, one not
        "public.example": ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"],
    }
    resolver = resolver_for(table)
    for host in ("localhost.example", "mixed.example"):
        with pytest.raises(TargetRefused, match="not a public address"):
            await resolve(f"https://{host}/h", allow_http=False, allowed=[], resolver=resolver)
    target = await resolve(
        "https://public.example:8443/h?x=1", allow_http=False, allowed=[], resolver=resolver
    )
    assert (target.host, target.port, target.address) == ("public.example", 8443, "93.184.215.14")
    with pytest.raises(TargetRefused, match="cannot resolve"):
        await resolve("https://nowhere.example/", allow_http=False, allowed=[], resolver=resolver)
    # The system resolver: "localhost" is loopback.
    with pytest.raises(TargetRefused, match="not a public address"):
        await resolve("https://localhost/hook", allow_http=False, allowed=[])


async def test_the_allow_list_and_http_setting_open_what_they_name_only() -> None:
    allowed = parse_networks("127.0.0.1, 10.0.0.0/8,::1")
    target = await resolve("http://127.0.0.1:9/h", allow_http=True, allowed=allowed)
    assert target.address == "127.0.0.1" and target.scheme == "http"
    assert (await resolve("https://[::1]/h", allow_http=False, allowed=allowed)).address == "::1"
    assert (await resolve("https://10.9.9.9/", allow_http=False, allowed=allowed)).port == 443
    with pytest.raises(TargetRefused):
        await resolve("https://127.0.0.2/h", allow_http=False, allowed=allowed)
    with pytest.raises(TargetRefused, match="https"):
        await resolve("http://127.0.0.1/h", allow_http=False, allowed=allowed)
    assert address_refusal(ipaddress.ip_address("8.8.8.8"), []) is None


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/",
        "https://user:pw@example.com/",
        "https:///nohost",
        "https://example.com/#frag",
        "https://exa mple.com/",
        "https://例え.jp/",
        "https://example.com:99999/",
        "https://[::1/",
        "https://example.com/" + "a" * 2100,
        "javascript:alert(1)",
    ],
)
def test_malformed_or_unsafe_urls(url: str) -> None:
    with pytest.raises(TargetRefused):
        check_url(url, allow_http=True)


def test_networks_parse() -> None:
    assert [str(n) for n in parse_networks(" 127.0.0.1 ,,10.0.0.0/8")] == [
        "127.0.0.1/32",
        "10.0.0.0/8",
    ]
    with pytest.raises(ValueError):
        parse_networks("not-a-network")
