"""What the server reports becomes webhook events: chat writes (a mention is its own event),
membership changes from the audit step, and doc changes debounced; reserved docs are not."""

from __future__ import annotations

import json

import pytest

import collab.webhooks.service as service_module
from collab.meta import AuditEvent, Endpoint, Message
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
    await service._debounced[("r", "notes")]
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
