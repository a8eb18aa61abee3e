"""A room token's own end, read from its claims: how a test waits out a token, since ``exp``
is whole seconds rounded up (``collab.auth.tokens.token_exp``) and a fixed sleep of its
``ttl`` could wake a second too early."""

from __future__ import annotations

import base64
import json
import time


def token_exp(token: str) -> int:
    """The ``exp`` claim of a JWT, unverified (the test minted it)."""
    payload = token.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return int(claims["exp"])


def seconds_past_exp(token: str, margin: float = 0.2) -> float:
    """How long to sleep (the scenario: the token runs out) until ``margin`` after its end."""
    return max(0.0, token_exp(token) - time.time() + margin)
