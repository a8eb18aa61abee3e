"""``collab.chat.service`` in process, at an edge found in review: a write whose doc change was
refused still reaches the search index."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

import collab.chat.window as window_module
from collab.chat import Actor
from collab.chat.schema import put_message
from collab.meta import Message, Role
from collab.services import Services

pytestmark = pytest.mark.anyio

ROOM = "r"


class Recorder:
    def __init__(self) -> None:
        self.rows: list[Message] = []

    async def messages_written(self, room_id: str, messages: Sequence[Message]) -> None:
        self.rows.extend(messages)


async def test_a_deletion_the_doc_refused_still_reaches_the_search_index(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the doc refuses a write's change (``Shown.rows`` catches it), the row still commits
    ("the rows stand: the doc's next load shows them") and its caller is told of the failure;
    the search index learns of the row all the same, so a deleted text stops being found
    (before: it was never told, and a deletion or an edit is not retried by client id)."""
    author = Actor("u1", "User 1", None, Role.commenter)
    message, _ = await services.chat.post(ROOM, author, "secret to delete", "c1")
    recorder = Recorder()
    services.chat.row_observer = recorder

    real = put_message

    def refuses(doc: Any, row: Message) -> None:
        if row.deleted:
            raise ValueError("yrs refused the change")  # as a panicking yrs does
        real(doc, row)

    monkeypatch.setattr(window_module, "put_message", refuses)
    with pytest.raises(Exception):  # noqa: B017 - the doc was given up: RoomFailed
        await services.chat.delete(ROOM, author, message.id)
    monkeypatch.setattr(window_module, "put_message", real)

    stored = await services.meta.get_message(ROOM, message.id)
    assert stored is not None and stored.deleted  # the row stood: the message is deleted
    assert [m.id for m in recorder.rows if m.deleted] == [message.id], recorder.rows
