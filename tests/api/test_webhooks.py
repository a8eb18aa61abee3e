"""Outgoing webhooks through a real server (issue 14): registered by owners, fed by chat,
membership and doc events, signed (verified with the Standard Webhooks reference code),
listed with their attempts, redelivered; refused targets (Done 3 at the door); every route
attacked (non-members, roles, credentials, bodies, floods)."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from pycrdt import Text
from standardwebhooks import Webhook

from collab.api.webhooks import MAX_ENDPOINTS
from tests.api.conftest import Api, assert_error
from tests.support.pyclient import provider
from tests.support.race import STORES, race, racing_servers
from tests.support.receiver import Receiver
from tests.support.server import CollabServer, ServerFactory

pytestmark = pytest.mark.anyio


def loopback_server(server_factory: ServerFactory, **settings: Any) -> CollabServer:
    return server_factory(webhook_allow_http="true", webhook_allow_networks="127.0.0.1", **settings)


def register(api: Api, room: str, url: str, events: list[str]) -> dict[str, Any]:
    r = api.dev.http.post(f"/rooms/{room}/webhooks", json={"url": url, "events": events})
    assert r.status_code == 201, r.text
    found: dict[str, Any] = r.json()
    api.server.remember(found["secret"])
    return found


async def test_events_are_delivered_signed_listed_and_redelivered(
    server_factory: ServerFactory,
) -> None:
    server = loopback_server(server_factory)
    api = Api(server)
    alice = api.user("alice")
    room = api.room("r")
    async with Receiver() as receiver:
        events = ["message.posted", "mention", "member.added", "doc.changed"]
        hook = register(api, room, receiver.url(), events)
        assert hook["secret"].startswith("whsec_") and hook["enabled"] is True
        verify = Webhook(hook["secret"])
        handle = api.dev.http.get("/me").json()["handle"]
        text = f"hello @{handle}"
        r = api.dev.http.post(f"/rooms/{room}/messages", json={"text": text, "client_id": "1"})
        assert r.status_code == 201
        # A mention is its own event once the server resolves mentions (the chat's work).
        mentions = r.json()["mentions"]
        expected = 2 if mentions else 1
        with anyio.fail_after(15):
            got = await receiver.wait_for(expected)
        payloads = {p["type"]: p for p in (verify.verify(g.body, g.headers) for g in got)}
        assert payloads["message.posted"]["data"]["message"]["text"] == text
        if mentions:
            assert payloads["mention"]["data"]["mentioned"] == [api.dev.user_id]
        r = api.dev.http.post(
            f"/rooms/{room}/members", json={"user_id": alice.user_id, "role": "editor"}
        )
        assert r.status_code == 201
        with anyio.fail_after(15):
            got = await receiver.wait_for(expected + 1)
        added = verify.verify(got[-1].body, got[-1].headers)
        assert added["type"] == "member.added" and added["data"]["user"] == alice.user_id
        assert added["data"]["role"] == "editor"
        # Many edits to a doc: one debounced doc.changed once they settle.
        async with provider(server.ws_url(room, "notes", token=alice.token)) as (doc, _):
            text_type = doc.get("text", type=Text)
            for i in range(5):
                text_type.insert(0, f"{i}")
                await anyio.sleep(0.05)  # the scenario: a user typing
        with anyio.fail_after(15):
            got = await receiver.wait_for(expected + 2)
        changed = verify.verify(got[-1].body, got[-1].headers)
        assert changed["type"] == "doc.changed" and changed["data"]["doc"] == "notes"
        await anyio.sleep(1)  # the scenario: nothing more comes for those edits
        assert len(receiver.received) == expected + 2

        base = f"/rooms/{room}/webhooks/{hook['id']}"
        deliveries = api.dev.http.get(base + "/deliveries").json()["items"]
        assert len(deliveries) == expected + 2
        assert {d["state"] for d in deliveries} == {"delivered"}
        first = deliveries[-1]
        attempts = api.dev.http.get(f"{base}/deliveries/{first['id']}").json()["items"]
        assert [(a["n"], a["status"], a["error"]) for a in attempts] == [(1, 204, None)]
        again = api.dev.http.post(f"{base}/deliveries/{first['id']}/redeliver")
        assert again.status_code == 202
        with anyio.fail_after(15):
            got = await receiver.wait_for(expected + 3)
        assert got[-1].headers["webhook-id"] == first["id"]
        listed = api.dev.http.get(f"/rooms/{room}/webhooks").json()["items"]
        assert "secret" not in listed[0] and listed[0]["failures"] == 0
    audit = api.dev.http.get(f"/rooms/{room}/audit").json()["items"]
    assert {"webhook.create", "webhook.redeliver"} <= {e["action"] for e in audit}
    assert hook["secret"] not in str(audit)
    api.close()


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/hook",
        "https://10.0.0.1/hook",
        "https://169.254.169.254/latest/meta-data/",
        "https://[::1]/hook",
        "https://localhost/hook",
        "http://93.184.215.14/hook",  # http:// without webhook_allow_http
    ],
)
def test_refused_targets_at_registration(api: Api, url: str) -> None:
    api.room("r")
    r = api.dev.http.post("/rooms/r/webhooks", json={"url": url, "events": ["*"]})
    assert_error(r, 400, "bad_request")
    assert api.dev.http.get("/rooms/r/webhooks").json()["items"] == []


def test_routes_are_for_owners_and_bodies_are_checked(api: Api) -> None:
    editor, outsider = api.user("editor"), api.user("outsider")
    room = api.room("r", owner=api.dev, **{editor.user_id: "editor"})
    api.room("other")
    dev = api.dev.http
    url, events = "https://93.184.215.14/hook", ["message.posted"]
    body: dict[str, Any] = {"url": url, "events": events}
    hook = register(api, room, url, events)
    base = f"/rooms/r/webhooks/{hook['id']}"
    paths = [
        ("POST", "/rooms/{}/webhooks", body),
        ("GET", "/rooms/{}/webhooks", None),
        ("GET", "/rooms/{}/webhooks/" + hook["id"], None),
        ("PATCH", "/rooms/{}/webhooks/" + hook["id"], {"enabled": True}),
        ("DELETE", "/rooms/{}/webhooks/" + hook["id"], None),
        ("GET", "/rooms/{}/webhooks/" + hook["id"] + "/deliveries", None),
    ]
    for method, path, payload in paths:
        there = outsider.http.request(method, path.format("r"), json=payload)
        missing = outsider.http.request(method, path.format("nosuch"), json=payload)
        assert there.status_code == missing.status_code == 404, (method, path)
        assert there.json() == missing.json()
        assert_error(editor.http.request(method, path.format("r"), json=payload), 403)
        assert_error(api.anonymous().request(method, path.format("r"), json=payload), 401)
    # Another room's webhook is not found through this one.
    assert_error(dev.get(f"/rooms/other/webhooks/{hook['id']}"), 404)
    assert_error(dev.get(base + "/deliveries/msg_nope"), 404)
    assert_error(dev.post(base + "/deliveries/msg_nope/redeliver"), 404)
    # Room tokens are not personal credentials.
    room_token = api.server.remember(dev.post("/rooms/r/tokens", json={}).json()["token"])
    assert_error(api.bearer(room_token).post("/rooms/r/webhooks", json=body), 403)
    # Bodies.
    for bad in (
        {},
        {"url": "https://93.184.215.14/"},
        {"url": 5, "events": ["*"]},
        {"url": "https://93.184.215.14/", "events": []},
        {"url": "https://93.184.215.14/", "events": "message.posted"},
        {"url": "https://93.184.215.14/", "events": ["message.exploded"]},
        {"url": "https://93.184.215.14/#x", "events": ["*"]},
        {"url": "https://u:p@93.184.215.14/", "events": ["*"]},
    ):
        assert_error(dev.post("/rooms/r/webhooks", json=bad), 400, "bad_request")
    assert_error(dev.post("/rooms/r/webhooks", content=b"{nope"), 400)
    assert_error(dev.post("/rooms/r/webhooks", content=b"x" * 70_000), 413)
    assert_error(dev.patch(base, json={"events": ["nope"]}), 400)
    changed = dev.patch(base, json={"events": ["member.added", "member.removed"]})
    assert changed.status_code == 200 and changed.json()["events"] == [
        "member.added",
        "member.removed",
    ]
    assert dev.delete(base).status_code == 204
    assert_error(dev.get(base), 404)
    assert_error(dev.delete(base), 404)
    # A revoked personal token.
    alice = api.user("alice")
    api.dev.http.post("/rooms/r/members", json={"user_id": alice.user_id, "role": "owner"})
    alice.http.delete(f"/tokens/{alice.http.get('/tokens').json()['items'][0]['id']}")
    assert_error(alice.http.get("/rooms/r/webhooks"), 401)
    # Not in a DM.
    bob = api.user("bob")
    dm = bob.http.post("/dms", json={"user": api.dev.user_id}).json()["id"]
    assert_error(bob.http.post(f"/rooms/{dm}/webhooks", json=body), 409)


def test_registering_is_rate_limited(server_factory: ServerFactory) -> None:
    server = server_factory(api_create_burst=3, api_create_rate=0.05)
    api = Api(server)
    api.room("r")
    statuses = []
    for i in range(5):
        body = {"url": f"https://93.184.215.14/{i}", "events": ["*"]}
        r = api.dev.http.post("/rooms/r/webhooks", json=body)
        if r.status_code == 201:
            server.remember(r.json()["secret"])
        statuses.append(r.status_code)
    assert statuses == [201, 201, 201, 429, 429]
    api.close()


@pytest.mark.parametrize("store", STORES)
async def test_concurrent_registrations_stay_within_the_endpoint_cap(
    request: pytest.FixtureRequest, store: str
) -> None:
    """32 registrations at once for a cap of 20 per room: counted, then written, more got in;
    the count and the insert are one step now, on every store (PostgreSQL: two nodes)."""
    servers = racing_servers(
        request, store, webhook_allow_http="true", webhook_allow_networks="127.0.0.1"
    )
    token = servers[0].dev_token
    (made,) = await race(servers, token, "POST", [("/rooms", {"id": "r"})])
    assert made.status_code == 201, made.text
    body = {"url": "http://127.0.0.1:9/hook", "events": ["*"]}
    answers = await race(servers, token, "POST", [("/rooms/r/webhooks", body)] * 32)
    for answer in answers:
        if answer.status_code == 201:
            servers[0].remember(answer.json()["secret"])
        else:
            assert_error(answer, 400, "bad_request")
    assert [r.status_code for r in answers].count(201) == MAX_ENDPOINTS
    (listed,) = await race(servers[-1:], token, "GET", [("/rooms/r/webhooks?limit=100", None)])
    assert len(listed.json()["items"]) == MAX_ENDPOINTS
