"""What the server reports becomes webhook events: chat writes (a mention is its own event),
membership changes from the audit step, and doc changes debounced; reserved docs are not. A
chat write's own transaction enqueues what ``chat_event`` would (``chat_outbox``)."""

from __future__ import annotations

import json

import anyio
import pytest

import collab.webhooks.service as service_module
from collab.meta import AuditEvent, Endpoint, Message, NewMessage
from collab.meta.memory import MemoryMetaStore
from collab.webhooks import Dispatcher, WebhookService

pytestmark = pytest.mark.anyio


async def test_events_reach_the_outbox(monkeypatch: pytest.MonkeyPatch) -> None:
    meta = MemoryMetaStore()
    await meta.create_webhook(Endpoint("e", "r", "https://x.example/", ("*",), "whsec_", "o", 1))
    service = WebhookService(Dispatcher(meta))
    message = Message("r", 1, "m1", "u1", "Ann", "ann", "c1", "hi @bob", 5.0, mentions=("u2",))
    await service.chat_event("message.posted", "r", message)
    await service.chat_event("message.deleted", "r", message)
    await service.audited(AuditEvent(1, "member.add", "owner", "r", "u3", {"role": "editor"}))
    await service.audited(AuditEvent(1, "member.role", "owner", "r", "u3", {"role": "viewer"}))
    await service.audited(AuditEvent(1, "member.remove", "owner", None, "u3"))  # no room
    monkeypatch.setattr(service_module, "DEBOUNCE", 0.05)
    service.doc_changed("r", "chat")  # the server's own docs are not "changed by someone"
    service.doc_changed("r", "_meta")
    for _ in range(5):
        service.doc_changed("r", "notes")
    with anyio.fail_after(10):
        await service.settled()
    deliveries = await meta.list_webhook_deliveries("e", 50)
    kinds = sorted(json.loads(d.payload)["type"] for d in deliveries)
    assert kinds == [
        "doc.changed",
        "member.added",
        "mention",
        "message.deleted",
        "message.posted",
    ]
    by_kind = {json.loads(d.payload)["type"]: json.loads(d.payload) for d in deliveries}
    assert by_kind["mention"]["data"]["mentioned"] == ["u2"]
    assert by_kind["message.posted"]["data"]["message"]["author"]["handle"] == "ann"
    assert by_kind["member.added"]["data"] == {
        "room": "r",
        "user": "u3",
        "by": "owner",
        "role": "editor",
    }
    await service.stop()


async def test_the_chat_outbox_enqueues_what_chat_event_does(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The same message written with ``chat_outbox`` (in the write's own step) into one store,
    and told to ``chat_event`` (its own step) in another: the same deliveries, byte for byte."""
    inside, after = MemoryMetaStore(), MemoryMetaStore()
    endpoint = Endpoint("e", "r", "https://x.example/", ("*",), "whsec_", "o", 1)
    for meta in (inside, after):
        await meta.create_webhook(endpoint)
    service = WebhookService(Dispatcher(inside, clock=lambda: 1_700_000_000.5))
    reference = WebhookService(Dispatcher(after, clock=lambda: 1_700_000_000.5))
    woken: list[None] = []
    monkeypatch.setattr(service.dispatcher, "wake", lambda: woken.append(None))
    new = NewMessage("r", "m1", "u1", "Ann", "ann", "c1", "hi @bob", 5.0, mentions=("u2",))
    posted, _ = await inside.post_message(new, None, service.chat_outbox("message.posted"))
    outbox = service.chat_outbox("message.edited")
    edited = await inside.edit_message("r", "m1", "hey @bob", 6.0, ("u2",), None, outbox)
    outbox = service.chat_outbox("message.deleted")
    deleted = await inside.delete_message("r", "m1", 7.0, None, outbox)
    for event, message in (
        ("message.posted", posted),
        ("message.edited", edited),
        ("message.deleted", deleted),
    ):
        await reference.chat_event(event, "r", message)

    async def payloads(meta: MemoryMetaStore) -> list[tuple[str, str]]:
        return sorted((d.event, d.payload) for d in await meta.list_webhook_deliveries("e", 50))

    assert len(await payloads(inside)) == 5
    assert await payloads(inside) == await payloads(after)
    ids = [d.id for d in await inside.list_webhook_deliveries("e", 50)]
    assert all(i.startswith("msg_") and len(i) == 36 for i in ids) and len(set(ids)) == 5
    assert len(woken) == 3
    await service.stop()


async def test_doc_changes_are_debounced_per_doc_under_one_timer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Docs changed at different times each get one event once their own debounce is over;
    a change after its event was enqueued gets another."""
    meta = MemoryMetaStore()
    await meta.create_webhook(Endpoint("e", "r", "https://x.example/", ("*",), "whsec_", "o", 1))
    service = WebhookService(Dispatcher(meta))
    monkeypatch.setattr(service_module, "DEBOUNCE", 0.2)

    async def changed() -> list[str]:
        deliveries = await meta.list_webhook_deliveries("e", 50)
        return sorted(json.loads(d.payload)["data"]["doc"] for d in deliveries)

    service.doc_changed("r", "a")
    await anyio.sleep(0.1)
    service.doc_changed("r", "b")
    service.doc_changed("r", "a")  # within a's debounce: nothing more
    with anyio.fail_after(10):
        await service.settled()
    assert await changed() == ["a", "b"]
    service.doc_changed("r", "a")
    with anyio.fail_after(10):
        await service.settled()
    assert await changed() == ["a", "a", "b"]
    await service.stop()


async def test_doc_changes_inside_their_debounce_are_enqueued_at_stop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A shutdown does not drop a doc change still waiting out its debounce: the durable
    outbox gets it (delivered after a restart); a change reported after stop is ignored."""
    meta = MemoryMetaStore()
    await meta.create_webhook(Endpoint("e", "r", "https://x.example/", ("*",), "whsec_", "o", 1))
    service = WebhookService(Dispatcher(meta))
    monkeypatch.setattr(service_module, "DEBOUNCE", 3600.0)
    service.doc_changed("r", "a")
    service.doc_changed("r", "b")
    with anyio.fail_after(10):
        await service.stop()
    deliveries = await meta.list_webhook_deliveries("e", 50)
    assert sorted(json.loads(d.payload)["data"]["doc"] for d in deliveries) == ["a", "b"]
    service.doc_changed("r", "c")
    with anyio.fail_after(10):
        await service.settled()
    assert len(await meta.list_webhook_deliveries("e", 50)) == 2
