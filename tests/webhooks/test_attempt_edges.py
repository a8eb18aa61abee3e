"""An attempt's edges: the name's resolution is inside its cut, and IPv6 forms that hide a
private IPv4 address (local-use NAT64, RFC 8215) are refused (both found in review)."""

from __future__ import annotations

import time
import uuid

import anyio
import pytest

from collab.meta import Endpoint, MetaStore
from collab.webhooks import Dispatcher, Policy, new_secret
from collab.webhooks.sender import Outcome
from collab.webhooks.targets import TargetRefused, resolve
from tests.meta.support import T0

pytestmark = pytest.mark.anyio


async def add_endpoint(meta: MetaStore, url: str = "https://hook.example/h") -> Endpoint:
    endpoint = Endpoint(uuid.uuid4().hex, "r", url, ("*",), new_secret(), "owner", time.time())
    await meta.create_webhook(endpoint)
    return endpoint


async def test_name_resolution_is_inside_the_attempts_deadline(meta: MetaStore) -> None:
    """docs/integrations.md: "An attempt is cut at 5 s whatever the receiver does": the
    receiver's DNS too. A name that takes 30 s to resolve ends the attempt at its cut, as a
    failure, and frees its slot (before: resolution ran before the cut started)."""
    endpoint = await add_endpoint(meta)
    [delivery] = await meta.enqueue_webhook_event("r", "message.posted", "{}", T0, ["msg_b"])

    async def slow_resolver(host: str, port: int) -> list[str]:
        await anyio.sleep(30)
        return ["93.184.215.14"]

    async def sender(*args: object, **kwargs: object) -> Outcome:
        return Outcome(200, 0.0, None)

    worker = Dispatcher(
        meta, policy=Policy(timeout=0.2), resolver=slow_resolver, sender=sender, clock=lambda: T0
    )
    started = time.monotonic()
    with anyio.move_on_after(3):
        outcome = await worker.attempt(delivery, endpoint)
    assert time.monotonic() - started < 2, "the attempt was not cut at policy.timeout"
    assert outcome.status is None and outcome.error is not None


@pytest.mark.parametrize(
    "address",
    [
        "64:ff9b:1::a00:1",  # local-use NAT64 prefix (RFC 8215) of 10.0.0.1
        "64:ff9b:1::a9fe:a9fe",  # ... of 169.254.169.254
        "::7f00:1",  # IPv4-compatible 127.0.0.1
        "::ffff:0:7f00:1",  # IPv4-translated (SIIT) 127.0.0.1
    ],
)
async def test_local_use_nat64_of_a_private_address_is_refused(address: str) -> None:
    """docs/integrations.md: private addresses "are refused, also inside IPv6 (..., NAT64)",
    the local-use NAT64 prefix (64:ff9b:1::/48, which Python 3.11's ``is_global`` calls
    global) as the well-known one, and IPv4-compatible and IPv4-translated forms."""

    async def resolver(host: str, port: int) -> list[str]:
        return [address]

    with pytest.raises(TargetRefused):
        await resolve("https://hook.example/h", allow_http=False, allowed=[], resolver=resolver)
