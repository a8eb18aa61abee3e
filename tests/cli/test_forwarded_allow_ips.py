"""``forwarded_allow_ips`` is checked like every other setting. uvicorn takes an entry that is
not an IP address or a network, as ``ipaddress`` parses it strictly, as a literal (a UNIX
socket's name) that no TCP client ever matches, without a word: a host name (``nginx``), a
typo (``10.0.0.0/33``), a network with host bits (``10.0.0.1/24``) or ``*`` among others
trusted nobody, so every client behind the proxy shared the proxy's address (one rate-limit
bucket for everyone, audit records naming the proxy)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.cli import collab

BAD = {
    "nginx.internal": "'nginx.internal' is not an IP address or network",
    "10.0.0.0/33": "'10.0.0.0/33' is not an IP address or network",
    "10.0.0.300": "'10.0.0.300' is not an IP address or network",
    "10.0.0.1/24": "'10.0.0.1/24' has host bits set (the network is 10.0.0.0/24)",
    "127.0.0.1,*": "'*' trusts every address only alone",
}


@pytest.mark.parametrize("value", list(BAD))
def test_config_check_names_an_entry_uvicorn_would_never_match(tmp_path: Path, value: str) -> None:
    result = collab("config", "check", "--forwarded-allow-ips", value, cwd=tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    line = f'problem: forwarded_allow_ips = "{value}" (from --forwarded-allow-ips): {BAD[value]}'
    assert line in result.stderr.splitlines(), result.stderr


@pytest.mark.parametrize("value", ["127.0.0.1", "*", "10.0.0.0/8, ::1", "fd00::/8,10.0.0.2"])
def test_addresses_networks_and_a_lone_star_are_fine(tmp_path: Path, value: str) -> None:
    result = collab("config", "check", "--forwarded-allow-ips", value, cwd=tmp_path)
    assert result.returncode == 0, result.stderr


def test_serve_refuses_it_before_starting(tmp_path: Path) -> None:
    result = collab(
        "serve", "--store", "memory://", "--forwarded-allow-ips", "nginx", cwd=tmp_path, timeout=60
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.startswith('Error: forwarded_allow_ips = "nginx" (from --forwarded-allow')
