"""A room's audit log (``GET /rooms/{room}/audit``): its owners read it with a personal
credential; a room token, even an owner's, is refused as on every other owner route."""

from __future__ import annotations

from tests.api.conftest import Api, assert_error


def test_the_audit_log_takes_a_personal_credential_not_a_room_token(api: Api) -> None:
    alice, editor = api.user("alice"), api.user("editor")
    api.room("r", owner=alice, **{editor.user_id: "editor"})
    minted = alice.http.post("/rooms/r/tokens", json={})
    assert minted.status_code == 201 and minted.json()["role"] == "owner", minted.text
    owners_token = api.bearer(api.server.remember(minted.json()["token"]))
    assert_error(owners_token.get("/rooms/r/audit"), 403, "forbidden")
    assert_error(owners_token.get("/rooms/r/invites"), 403, "forbidden")  # as other owner lists
    actions = [e["action"] for e in alice.http.get("/rooms/r/audit").json()["items"]]
    assert "token.mint" in actions
    assert_error(editor.http.get("/rooms/r/audit"), 403, "forbidden")
