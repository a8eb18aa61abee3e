"""Credential expiry with an injected clock: room tokens, and the one timer per socket that
closes a socket when the credential behind it ends (issue 8, items 2 and 18)."""

from __future__ import annotations

import asyncio

import anyio
import pytest

from collab.auth.principal import Principal
from collab.auth.tokens import is_token_id, mint_room_token, token_exp, verify_room_token
from collab.errors import TokenExpired, Unauthorized
from collab.meta import Role
from collab.sync.expiry import ExpiryTimer, expiry_close
from collab.sync.peer import Peer

KEYS = ["unit-test-signing-key-0123456789"]
T0 = 1_700_000_000.0


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def principal(via: str, expires_at: float | None) -> Principal:
    return Principal(user_id="u1", name="U", via=via, expires_at=expires_at)  # type: ignore[arg-type]


def peer_of(p: Principal) -> Peer:
    return Peer(None, max_queue_bytes=1024, send_timeout=1.0, principal=p)


def test_a_room_token_is_valid_until_its_exp_and_not_at_it() -> None:
    token = mint_room_token(
        KEYS, user_id="u1", room_id="r", role=Role.editor, ttl=60, now=T0, jti="a" * 32
    )
    claims = verify_room_token(KEYS, token, now=T0 + 59.999)
    assert claims.expires_at == T0 + 60 and claims.token_id == "a" * 32
    # joserfc alone accepts the whole second of exp; the socket's timer closes at exp itself,
    # so a reconnect with the same token at that instant must already be refused.
    for late in (T0 + 60, T0 + 60.5, T0 + 3600):
        with pytest.raises(Unauthorized):
            verify_room_token(KEYS, token, now=late)


def test_a_token_minted_late_in_a_second_still_lives_its_whole_ttl() -> None:
    """``exp`` is whole seconds: rounded down, a one-second token minted at ``T0 + 0.9`` ended
    at ``T0 + 1``, a tenth of a second later (CI once lost a ``--ttl 1`` token that way
    between ``collab token create`` and its first request). Rounded up, it lives at least its
    ``ttl`` and less than a second more."""
    for ttl in (1, 1.5, 60):
        token = mint_room_token(
            KEYS, user_id="u1", room_id="r", role=Role.editor, ttl=ttl, now=T0 + 0.9
        )
        ends = verify_room_token(KEYS, token, now=T0 + 0.9 + ttl - 0.001).expires_at
        assert T0 + 0.9 + ttl <= ends < T0 + 1.9 + ttl


def test_a_token_minted_with_the_whole_token_max_ttl_lives_to_its_exp() -> None:
    """``iat`` is rounded down and ``exp`` up: bounded by ``iat + token_max_ttl``, a token
    minted at ``T0 + 0.9`` with the whole setting (the API's default ``ttl``) ended at
    ``T0 + ttl``, up to a second before the ``exp`` (and ``expires_at``) it was minted with:
    a one-second token of a server with ``token_max_ttl = 1`` lived a tenth of a second."""
    for ttl in (1, 1.5, 60, 3600):
        token = mint_room_token(
            KEYS, user_id="u1", room_id="r", role=Role.editor, ttl=ttl, now=T0 + 0.9
        )
        exp = token_exp(T0 + 0.9, ttl)
        claims = verify_room_token(KEYS, token, now=exp - 0.001, max_ttl=ttl)
        assert claims.expires_at == exp, ttl
        with pytest.raises(Unauthorized):
            verify_room_token(KEYS, token, now=exp, max_ttl=ttl)


def test_a_token_ends_at_the_current_token_max_ttl_from_its_minting() -> None:
    """Minted for an hour, checked by a server whose ``token_max_ttl`` is now a minute: it
    ends a minute after the second of its ``iat`` (as long as a revocation of it is kept)."""
    token = mint_room_token(KEYS, user_id="u1", room_id="r", role=Role.editor, ttl=3600, now=T0)
    assert verify_room_token(KEYS, token, now=T0 + 600).expires_at == T0 + 3600
    assert verify_room_token(KEYS, token, now=T0 + 60, max_ttl=60).expires_at == T0 + 61
    assert verify_room_token(KEYS, token, now=T0, max_ttl=7200).expires_at == T0 + 3600
    for late in (T0 + 61, T0 + 600):
        with pytest.raises(Unauthorized):
            verify_room_token(KEYS, token, now=late, max_ttl=60)


def test_every_minted_token_has_an_id_and_one_without_is_refused() -> None:
    token = mint_room_token(KEYS, user_id="u1", room_id="r", role=Role.viewer, ttl=60, now=T0)
    assert is_token_id(verify_room_token(KEYS, token, now=T0).token_id)
    assert not is_token_id("A" * 32) and not is_token_id("a" * 31) and not is_token_id("../x")

    from joserfc import jwt
    from joserfc.jwk import OctKey

    from collab.auth import tokens

    claims = {"iss": "collab", "aud": "collab:room", "sub": "u1", "room": "r", "role": "viewer"}
    header = {"alg": "HS256", "kid": tokens._kid(KEYS[0])}
    no_jti = jwt.encode(header, {**claims, "exp": int(T0 + 60)}, OctKey.import_key(KEYS[0]))
    with pytest.raises(Unauthorized):
        verify_room_token(KEYS, no_jti, now=T0)
    no_iat = jwt.encode(
        header, {**claims, "exp": int(T0 + 60), "jti": "b" * 32}, OctKey.import_key(KEYS[0])
    )
    assert verify_room_token(KEYS, no_iat, now=T0).token_id == "b" * 32
    with pytest.raises(Unauthorized):  # a server bounds every token by token_max_ttl
        verify_room_token(KEYS, no_iat, now=T0, max_ttl=3600)


def test_what_an_expired_credential_closes_with() -> None:
    code, _ = expiry_close(principal("room_token", T0))
    assert code == TokenExpired.close_code == 4001
    assert not 4400 <= code < 4500, "y-websocket >= 3.1 would stop retrying"
    for via in ("session", "ticket"):
        assert expiry_close(principal(via, T0))[0] == 4401


@pytest.mark.anyio
async def test_the_timer_closes_a_room_token_socket_at_exp_by_the_injected_clock() -> None:
    clock = Clock()
    peer = peer_of(principal("room_token", T0 + 3600))
    timer = ExpiryTimer(peer, clock=clock)
    timer.start()
    assert timer.armed and not peer.closing
    clock.now = T0 + 3599.999
    timer.check()  # the loop's timer fired early by the wall clock: look again, close nothing
    assert timer.armed and not peer.closing
    clock.now = T0 + 3600
    timer.check()
    assert peer.close_code == 4001 and not timer.armed


@pytest.mark.anyio
async def test_the_timer_closes_a_session_socket_4401_and_is_cancelled_with_the_socket() -> None:
    clock = Clock()
    expired = peer_of(principal("session", T0 - 1))
    ExpiryTimer(expired, clock=clock).start()  # already over at the handshake: closed at once
    assert expired.close_code == 4401

    never = ExpiryTimer(peer_of(principal("api_token", None)), clock=clock)
    never.start()
    assert not never.armed  # nothing to wait for: no timer at all

    live = peer_of(principal("session", T0 + 10))
    timer = ExpiryTimer(live, clock=clock)
    timer.start()
    timer.cancel()  # the socket ended first
    assert not timer.armed and not live.closing


@pytest.mark.anyio
async def test_the_armed_timer_fires_on_the_event_loop() -> None:
    import time

    peer = peer_of(principal("room_token", time.time() + 0.05))
    timer = ExpiryTimer(peer)
    timer.start()
    with anyio.fail_after(5):
        while not peer.closing:
            await asyncio.sleep(0.01)
    assert peer.close_code == 4001
