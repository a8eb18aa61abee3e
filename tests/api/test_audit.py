"""A room's audit log (``GET /rooms/{room}/audit``): its owners read it with a personal
credential; a room token, even an owner's, is refused as on every other owner route."""

from __future__ import annotations

from tests.api.conftest import Api, assert_error
from tests.support.server import ServerFactory


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


def test_only_owners_read_it_and_outsiders_learn_nothing(api: Api) -> None:
    alice = api.user("alice")
    others = {role: api.user(role) for role in ("editor", "commenter", "viewer")}
    api.room("r", owner=alice, **{u.user_id: role for role, u in others.items()})
    assert alice.http.get("/rooms/r/audit").status_code == 200
    for actor in others.values():
        assert_error(actor.http.get("/rooms/r/audit"), 403, "forbidden")
    outsider = api.user("outsider")
    for room in ("r", "nosuch"):  # the same answer whether the room exists or not
        assert_error(outsider.http.get(f"/rooms/{room}/audit"), 404)
    assert_error(api.anonymous().get("/rooms/r/audit"), 401)
    for bad in ("limit=abc", "limit=0", "limit=100000", "cursor=%7Bnope"):
        assert_error(alice.http.get(f"/rooms/r/audit?{bad}"), 400)
    # A room token revoked, then a personal token revoked: 401 each.
    minted = alice.http.post("/rooms/r/tokens", json={}).json()
    room_token = api.bearer(api.server.remember(minted["token"]))
    assert alice.http.delete(f"/rooms/r/tokens/{minted['id']}").status_code == 204
    assert_error(room_token.get("/rooms/r/audit"), 401)
    alice.http.delete(f"/tokens/{alice.http.get('/tokens').json()['items'][0]['id']}")
    assert_error(alice.http.get("/rooms/r/audit"), 401)


def test_a_flood_of_bad_credentials_is_refused(server_factory: ServerFactory) -> None:
    server = server_factory(auth_failure_burst=3, auth_failure_rate=0.01)
    api = Api(server)
    api.room("r")
    forged = api.bearer("collab_" + "A" * 40)
    statuses = [forged.get("/rooms/r/audit").status_code for _ in range(5)]
    assert statuses == [401, 401, 401, 429, 429]
    api.close()
