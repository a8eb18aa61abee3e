"""The room-management API at its edges (each found in review): a deeply nested cursor, an
email-bound invite and Unicode case folding, NUL in a title or an email on PostgreSQL, an
integer past any float, and a room made again under a deleted room's id."""

from __future__ import annotations

import base64

from tests.api.conftest import Api, assert_error
from tests.support.server import ServerFactory


def _cursor(raw: str) -> str:
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def test_a_deeply_nested_cursor_is_a_400_not_a_500(api: Api) -> None:
    """A cursor is parsed like a body (strict JSON, nesting bounded): one nested thousands deep
    is a 400, not a 500 (before: a RecursionError)."""
    alice = api.user("alice")
    api.room("r", owner=alice)
    deep = _cursor("[" * 3000 + "]" * 3000)
    for path in ("/rooms", "/rooms/r/members", "/rooms/r/docs", "/rooms/r/audit", "/dms"):
        r = alice.http.get(path, params={"cursor": deep})
        assert_error(r, 400, "bad_request")


def test_an_email_bound_code_is_not_accepted_by_another_address(api: Api) -> None:
    """An invite bound to an address is accepted only by that address, compared with ASCII case
    folding as every store does: ``straße`` is not ``strasse`` (before: full Unicode folding
    made them one, and another verified address took the invite)."""
    alice = api.user("alice")
    api.room("r", owner=alice)
    other = api.user("other", email="straße@example.com", verified=True)
    r = alice.http.post("/rooms/r/invites", json={"role": "editor", "email": "strasse@example.com"})
    assert r.status_code == 201, r.text
    code = r.json()["code"]
    # the store does not think the invite is theirs
    assert other.http.get("/me/invites").json()["items"] == []
    r = other.http.post(f"/invites/{code}/accept")
    assert_error(r, 403, "forbidden")


def test_a_nul_in_a_room_title_or_an_email_is_a_400_on_postgres(
    server_factory: ServerFactory, pg_url: str
) -> None:
    """A room title and an invite's email refuse control characters with a 400 (before: NUL
    reached PostgreSQL, which cannot store it: 500)."""
    api = Api(server_factory(store=pg_url))
    try:
        alice = api.user("alice")
        api.room("r2", owner=alice)
        answers = [
            alice.http.post("/rooms", json={"id": "r", "title": "a\u0000b"}),
            alice.http.patch("/rooms/r2", json={"title": "x\u0000"}),
            alice.http.post("/rooms/r2/members", json={"email": "a\u0000@x.org", "role": "viewer"}),
            alice.http.post("/rooms/r2/invites", json={"email": "a\u0000@x.org"}),
        ]
        assert [r.status_code for r in answers] == [400] * 4, [r.text for r in answers]
    finally:
        api.close()


def test_an_integer_ttl_too_large_for_a_float_is_a_400(api: Api) -> None:
    """A number field given an integer past any float is a 400 (before: OverflowError, a 500)."""
    alice = api.user("alice")
    api.room("r", owner=alice)
    headers = {"content-type": "application/json"}
    for digits in ("1" + "0" * 400, "-1" + "0" * 400):
        body = b'{"ttl": ' + digits.encode() + b"}"
        for path in ("/rooms/r/invites", "/rooms/r/tokens"):
            r = alice.http.post(path, content=body, headers=headers)
            assert_error(r, 400, "bad_request")


def test_a_room_made_again_under_a_deleted_id_inherits_nothing_of_its_bots(api: Api) -> None:
    """Deleting a room retires its bots (disabled, their tokens revoked) and its incoming hooks,
    and their rows go with the room: a room made again under the id lists none and mints no
    token for them, and the old bot's token no longer opens the rooms it was a member of
    (before: the newcomer took the bot over, and with it those rooms)."""
    alice, mallory = api.user("alice"), api.user("mallory")
    api.room("r", owner=alice)
    api.room("ops", owner=alice)
    r = alice.http.post("/rooms/r/bots", json={"name": "deploy", "role": "editor"})
    assert r.status_code == 201, r.text
    bot_id, bot_token = r.json()["bot"]["id"], r.json()["token"]
    r = alice.http.post("/rooms/r/hooks", json={"name": "ci"})
    assert r.status_code == 201, r.text
    r = alice.http.post("/rooms/ops/members", json={"user_id": bot_id, "role": "editor"})
    assert r.status_code == 201, r.text
    assert alice.http.delete("/rooms/r").status_code == 204

    api.room("r", owner=mallory)
    leaked = {
        "bots": mallory.http.get("/rooms/r/bots").json()["items"],
        "hooks": mallory.http.get("/rooms/r/hooks").json()["items"],
    }
    minted = mallory.http.post(f"/rooms/r/bots/{bot_id}/tokens")
    reached = None
    if minted.status_code == 201:
        as_bot = api.bearer(minted.json()["token"])
        reached = as_bot.get("/rooms/ops").status_code
    # before the fix: ({"bots": [alice's bot], "hooks": [alice's hook]}, 201, 200)
    assert (leaked, minted.status_code, reached) == ({"bots": [], "hooks": []}, 404, None)
    assert api.bearer(bot_token).get("/rooms/ops").status_code == 401  # the bot is retired
