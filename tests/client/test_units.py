"""collab.client's pieces without a server: backoff, credentials, errors, frames."""

from __future__ import annotations

import base64
import json

import pytest

from collab.client import errors
from collab.client.backoff import Backoff
from collab.client.credentials import Credentials, token_lifetime
from collab.client.frames import read_bytes, read_varuint, saved_frame, varuint
from collab.client.link import ws_base_for

pytestmark = pytest.mark.anyio


def jwt_with(**claims: object) -> str:
    body = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    return f"eyJhbGciOiJIUzI1NiJ9.{body}.sig"


def test_backoff_doubles_up_to_its_cap_with_jitter_in_the_upper_half() -> None:
    lows = Backoff(0.5, 8, random=lambda: 0.0)
    highs = Backoff(0.5, 8, random=lambda: 1.0)
    assert [lows.next() for _ in range(7)] == [0.25, 0.5, 1, 2, 4, 4, 4]
    assert [highs.next() for _ in range(7)] == [0.5, 1, 2, 4, 8, 8, 8]
    highs.reset()
    assert highs.next() == 0.5
    many = Backoff(1, 60)
    assert all(30 <= w <= 60 for w in [many.next() for _ in range(200)][10:])
    huge = Backoff(1, 10, random=lambda: 1.0)
    huge.failures = 10_000  # no overflow after a very long outage
    assert huge.next() == 10
    with pytest.raises(ValueError):
        Backoff(0, 1)


def test_token_lifetime_reads_a_jwt_without_trusting_it() -> None:
    assert token_lifetime(jwt_with(iat=100, exp=200)) == (100.0, 200.0)
    assert token_lifetime(jwt_with(exp=200)) == (0.0, 200.0)
    assert token_lifetime("personal-api-token") is None
    assert token_lifetime("a.!!!.c") is None
    assert token_lifetime(jwt_with(exp="soon")) is None
    assert token_lifetime(jwt_with(exp=True)) is None


async def test_a_source_is_asked_again_before_the_token_expires() -> None:
    now = [1000.0]
    minted: list[str] = []

    async def source() -> str:
        minted.append(jwt_with(iat=now[0], exp=now[0] + 3600))
        return minted[-1]

    creds = Credentials(source=source, clock=lambda: now[0])
    first = await creds.get()
    assert await creds.get() == first and len(minted) == 1
    now[0] += 3600 - 61  # more than a minute left: kept
    assert await creds.get() == first
    now[0] += 2  # less than a minute left: refreshed
    assert await creds.get() != first and len(minted) == 2
    # A refusal of an older token does not throw away the newer one.
    assert await creds.refresh(first) and len(minted) == 2
    assert await creds.refresh(minted[-1]) and len(minted) == 3


async def test_short_tokens_refresh_in_their_last_quarter_and_fixed_ones_never() -> None:
    now = [0.0]

    async def source() -> str:
        return jwt_with(iat=now[0], exp=now[0] + 8)

    creds = Credentials(source=source, clock=lambda: now[0])
    token = await creds.get()
    now[0] = 5.9
    assert await creds.get() == token
    now[0] = 6.0
    assert await creds.get() != token
    fixed = Credentials("api-token")
    assert await fixed.get() == "api-token" and not await fixed.refresh("api-token")
    with pytest.raises(ValueError):
        Credentials()

    async def empty() -> str:
        return ""

    with pytest.raises(ValueError):
        await Credentials(source=empty).get()


def test_refusals_map_to_one_error_tree() -> None:
    body = {"error": {"code": "forbidden", "message": "requires the owner role"}}
    found = errors.for_status(403, body)
    assert isinstance(found, errors.Forbidden) and found.code == "forbidden"
    assert str(found) == "requires the owner role" and found.status == 403
    limited = errors.for_status(429, {"error": {"code": "rate_limited"}}, retry_after=3)
    assert isinstance(limited, errors.RateLimited) and limited.retry_after == 3
    odd = errors.for_status(418, "teapot")
    assert type(odd) is errors.ApiError and odd.status == 418 and str(odd) == "HTTP 418"
    for code, cls in [
        (4400, errors.BadRequest),
        (4401, errors.Unauthorized),
        (4403, errors.Forbidden),
        (4404, errors.NotFound),
        (4413, errors.TooLarge),
    ]:
        assert code in errors.FINAL_CLOSE_CODES
        assert isinstance(errors.for_close(code, ""), cls)
    assert errors.RELOAD not in errors.FINAL_CLOSE_CODES
    assert errors.TOKEN_EXPIRED not in errors.FINAL_CLOSE_CODES


def test_frames_round_trip() -> None:
    for value in (0, 1, 127, 128, 300, 2**32, 2**53 - 1):
        assert read_varuint(varuint(value), 0) == (value, len(varuint(value)))
    assert read_varuint(saved_frame(7), 0) == (100, 1)
    assert read_bytes(b"\x01\x03abc", 1) == (b"abc", 5)
    for bad in (b"\x01\x05ab", b"\x80", b"\xff" * 10):
        with pytest.raises(ValueError):
            read_bytes(bad, 0 if bad[0] != 1 else 1)


def test_server_urls() -> None:
    assert ws_base_for("http://127.0.0.1:8000") == "ws://127.0.0.1:8000/ws"
    assert ws_base_for("https://c.example/base/") == "wss://c.example/base/ws"
    with pytest.raises(ValueError):
        ws_base_for("ftp://c.example")
