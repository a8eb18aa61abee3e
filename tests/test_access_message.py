"""Message 103 "access changed": an open socket that opted in to collab's own messages learns
its user's new role at once (issue 10: the tab's editor turns read-only without a reload);
sockets that did not opt in never receive it (y-websocket logs an error for unknown types)."""

from __future__ import annotations

import json

import anyio
import httpx
import pytest

from collab.meta import MetaStore
from collab.wire import framing
from collab.wire.lib0 import read_varuint
from tests.support.rawpeer import RawPeer
from tests.support.server import CollabServer

pytestmark = pytest.mark.anyio


def access_messages(peer: RawPeer) -> list[dict[str, object]]:
    found = []
    for frame in peer.other_frames:
        kind, pos = read_varuint(frame, 0)
        if kind == framing.MSG_ACCESS:
            length, pos = read_varuint(frame, pos)
            assert len(frame) == pos + length
            found.append(json.loads(frame[pos:]))
    return found


def last(peer: RawPeer) -> dict[str, object] | None:
    found = access_messages(peer)
    return found[-1] if found else None


async def test_role_changes_reach_opted_in_sockets(server: CollabServer) -> None:
    owner = await RawPeer.connect(server.ws_url("room", "d"))  # the dev user creates the room
    await owner.insert(0, "x")
    token = server.mint_token("vic", "room", "editor")

    async def vic_id(meta: MetaStore) -> str:
        return next(u.id for u in await meta.list_users() if u.subject == "vic")

    vic = server.with_meta(vic_id)
    api = httpx.AsyncClient(
        base_url=server.http_url + "/api/v1",
        headers={"Authorization": f"Bearer {server.dev_token}"},
    )
    with anyio.fail_after(20):
        doc = await RawPeer.connect(server.ws_url("room", "d", "collab=1", token=token))
        chat = await RawPeer.connect(server.ws_url("room", "chat", "collab=1", token=token))
        plain = await RawPeer.connect(server.ws_url("room", "d", token=token))
        for role, write in (("viewer", False), ("commenter", False), ("editor", True)):
            answer = await api.patch(f"/rooms/room/members/{vic}", json={"role": role})
            assert answer.status_code == 200
            await doc.wait_for(lambda r=role, w=write: last(doc) == {"role": r, "write": w})
            # The chat doc is server-written: nobody writes it through Yjs, whatever the role.
            await chat.wait_for(lambda r=role: last(chat) == {"role": r, "write": False})
        assert access_messages(plain) == []
        assert [m["role"] for m in access_messages(doc)] == ["viewer", "commenter", "editor"]
        # Removal still closes 4403 (no message needed).
        answer = await api.delete(f"/rooms/room/members/{vic}")
        assert answer.status_code == 204
        await doc.wait_for(lambda: doc.close_code == 4403)
        for peer in (chat, plain, owner):
            await peer.close()
    await api.aclose()
