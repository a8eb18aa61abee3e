"""What a room id reveals (issue 8, item 5) and the audit cursor (item 13).

A room re-created under a deleted room's id sees nothing older than itself; a non-member gets
the same answer for a room that exists and one that does not, on every room route (taken from
the OPERATIONS table, so a new route is covered the day it is added); a cursor naming an
impossible event id is a 400, not a 500.
"""

from __future__ import annotations

import base64
import json
import re

from collab.api.routes import OPERATIONS
from tests.api.conftest import Api, assert_error


def _cursor(value: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


def test_a_recreated_room_sees_nothing_older_than_itself(api: Api) -> None:
    alice, bob, mallory = api.user("alice"), api.user("bob"), api.user("mallory")
    api.room("shared", owner=alice, **{bob.user_id: "editor"})
    assert alice.http.patch("/rooms/shared", json={"title": "Secret plans"}).status_code == 200
    assert alice.http.post("/rooms/shared/tokens", json={"ttl": 60}).status_code == 201
    assert alice.http.post("/rooms/shared/invites", json={"role": "viewer"}).status_code == 201
    assert len(alice.http.get("/rooms/shared/audit").json()["items"]) >= 5
    assert alice.http.delete("/rooms/shared").status_code == 204

    r = mallory.http.post("/rooms", json={"id": "shared", "title": "Mine now"})
    assert r.status_code == 201
    audit = mallory.http.get("/rooms/shared/audit")
    assert audit.status_code == 200
    events = audit.json()["items"]
    assert [(e["action"], e["actor"]) for e in events] == [("room.create", mallory.user_id)]
    for secret in ("Secret plans", alice.user_id, bob.user_id, "token.mint", "room.delete"):
        assert secret not in audit.text
    # The site's own log (collab audit) keeps the earlier room's history.
    history = api.server.with_meta(lambda meta: meta.list_audit(room_id="shared", limit=50))
    actions = [e.action for e in history]
    assert "room.delete" in actions and "token.mint" in actions and actions[0] == "room.create"


def _concrete(path: str, room: str, user_id: str) -> str:
    values = {"room": room, "user": user_id, "doc": "d", "invite": "0" * 32, "token_id": "0" * 32}
    values |= {"message": "0" * 32, "emoji": "x", "bot": "0" * 32, "hook": "0" * 32}
    values |= {"delivery": "msg_0", "file": "0" * 32}
    return re.sub(r"{(\w+)}", lambda m: values[m[1]], path)


def test_a_non_member_cannot_tell_which_rooms_exist(api: Api) -> None:
    owner, member, stranger = api.user("owner"), api.user("member"), api.user("stranger")
    api.room("exists", owner=owner, **{member.user_id: "viewer"})
    room_ops = [op for op in OPERATIONS if "{room}" in op.path]
    assert len(room_ops) >= 14
    body = {"role": "viewer", "user_id": member.user_id, "title": "t"}
    for op in room_ops:
        answers = []
        for room in ("exists", "missing"):
            path = _concrete(op.path, room, member.user_id)
            sent = body if op.method in {"POST", "PATCH"} else None
            answers.append(stranger.http.request(op.method, path, json=sent))
        there, absent = answers
        assert (there.status_code, there.json()) == (absent.status_code, absent.json()), op
        assert_error(there, 404, "not_found")
    # A member of too low a role is told so: they know the room exists.
    assert_error(member.http.get("/rooms/exists/audit"), 403, "forbidden")


def test_audit_cursor_must_name_a_possible_event(api: Api) -> None:
    alice = api.user("alice")
    api.room("r", owner=alice)
    for value in ([10**30], [2**63], [-1], [0], ["x"], [1.5], [True], [], [1, 2], [None]):
        r = alice.http.get("/rooms/r/audit", params={"cursor": _cursor(value)})
        assert_error(r, 400, "bad_request")
    first = alice.http.get("/rooms/r/audit", params={"cursor": _cursor([2**63 - 1])})
    assert first.status_code == 200 and first.json()["items"][0]["action"] == "room.create"
