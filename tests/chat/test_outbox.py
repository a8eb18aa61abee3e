"""A chat write's outgoing webhook events, enqueued by the message's own transaction
(``ChatService`` over ``WebhookService.chat_outbox``, on a real SQLite file): each post, edit
and deletion once, with its mention; nothing for a client id's retry, a reaction or deleting a
tombstone again; the payloads those ``chat_event`` builds (``collab.webhooks.events``); the
worker woken for each write that enqueued."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from collab.chat import Actor
from collab.meta import Endpoint, Message, Role
from collab.services import Services
from collab.settings import Settings
from collab.webhooks.events import chat_events

pytestmark = pytest.mark.anyio

ROOM = "r"
URL = "https://127.0.0.1/hook"  # never called: the worker is stopped


@pytest.fixture
async def services(tmp_path: Path) -> AsyncIterator[Services]:
    settings = Settings(store=f"sqlite:///{tmp_path / 'collab.db'}", purge_interval=0)
    found = Services.create(settings)
    await found.open()
    await found.webhooks.stop()  # the deliveries stay in the outbox, to be read
    try:
        yield found
    finally:
        await found.close()


async def delivered(services: Services, endpoint_id: str) -> list[tuple[str, dict[str, Any]]]:
    """(event, payload) of the endpoint's deliveries, oldest write first."""
    found = await services.meta.list_webhook_deliveries(endpoint_id, 100)
    ordered = sorted(found, key=lambda d: (d.created_at, d.event))
    return [(d.event, json.loads(d.payload)) for d in ordered]


def expected(writes: list[tuple[str, Message]]) -> list[tuple[str, dict[str, Any]]]:
    """(event, data) that ``chat_event`` enqueues for each write, in the same order."""
    found = []
    for event, message in writes:
        for kind, data in sorted(chat_events(event, message), key=lambda pair: pair[0]):
            found.append((kind, json.loads(json.dumps({"room": ROOM, **data}))))
    return found


async def test_each_write_enqueues_its_events_once_as_chat_event_builds_them(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    meta, chat = services.meta, services.chat
    await meta.create_room(ROOM, "R", "u1")
    await meta.add_member(ROOM, "u2", Role.editor)
    for name, events in (("all", ("*",)), ("edits", ("message.edited",))):
        await meta.create_webhook(Endpoint(name, ROOM, URL, events, "whsec_x", "u1", len(name)))
    woken: list[None] = []
    monkeypatch.setattr(services.webhooks.dispatcher, "wake", lambda: woken.append(None))
    ann = Actor("u1", "Ann", "ann", Role.owner)

    posted, created = await chat.post(ROOM, ann, "hi @room", "c1")
    assert created and posted.mentions == ("u2",)
    assert [kind for kind, _ in await delivered(services, "all")] == ["mention", "message.posted"]
    assert len(woken) == 1
    again, created = await chat.post(ROOM, ann, "hi @room", "c1")  # a retry after a lost answer
    assert not created and again.id == posted.id
    edited = await chat.edit(ROOM, ann, posted.id, "still @room")
    await chat.react(ROOM, ann, posted.id, "👍", True)
    deleted, _ = await chat.delete(ROOM, ann, posted.id)
    await chat.delete(ROOM, ann, posted.id)  # a tombstone already: nothing happens
    writes = [("message.posted", posted), ("message.edited", edited), ("message.deleted", deleted)]
    got = await delivered(services, "all")
    assert [kind for kind, _ in got] == [
        "mention",
        "message.posted",
        "mention",
        "message.edited",
        "message.deleted",
    ]
    assert [(kind, payload["data"]) for kind, payload in got] == expected(writes)
    assert all(payload["type"] == kind for kind, payload in got)
    assert all(payload["timestamp"].endswith("Z") for _, payload in got)
    assert got[0][1]["data"]["mentioned"] == ["u2"]
    assert [kind for kind, _ in await delivered(services, "edits")] == ["message.edited"]
    assert len(woken) == 3, "woken by the post, the edit and the deletion only"


async def test_a_room_without_webhooks_enqueues_nothing(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    await services.meta.create_webhook(Endpoint("e", "other", URL, ("*",), "whsec_x", "u1", 1.0))
    woken: list[None] = []
    monkeypatch.setattr(services.webhooks.dispatcher, "wake", lambda: woken.append(None))
    message, _ = await services.chat.post(ROOM, Actor("u1", "Ann", None, Role.editor), "hi", "c")
    await services.chat.edit(ROOM, Actor("u1", "Ann", None, Role.editor), message.id, "hello")
    assert await delivered(services, "e") == [] and woken == []
