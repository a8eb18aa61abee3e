"""Invite links: single use, expiry, the verified-email rule."""

from __future__ import annotations

from typing import Any

from collab.meta.base import Role
from tests.api.conftest import Api, assert_error


def test_invite_grants_its_role_once(api: Api) -> None:
    alice, bob, carol = api.user("alice"), api.user("bob"), api.user("carol")
    api.room("r", owner=alice)
    r = alice.http.post("/rooms/r/invites", json={"role": "commenter", "ttl": 600})
    assert r.status_code == 201
    invite = r.json()
    assert invite["role"] == "commenter" and invite["url"].endswith(invite["code"])
    accepted = bob.http.post(f"/invites/{invite['code']}/accept")
    assert accepted.status_code == 200 and accepted.json() == {"room": "r", "role": "commenter"}
    assert bob.http.get("/rooms/r").json()["role"] == "commenter"
    assert_error(carol.http.post(f"/invites/{invite['code']}/accept"), 404, "not_found")
    assert_error(carol.http.post("/invites/made-up/accept"), 404, "not_found")
    # Accepting never lowers a higher role.
    viewer_invite = alice.http.post("/rooms/r/invites", json={"role": "viewer"}).json()
    assert alice.http.post(f"/invites/{viewer_invite['code']}/accept").json()["role"] == "owner"
    actions = [e["action"] for e in alice.http.get("/rooms/r/audit").json()["items"]]
    assert actions.count("invite.create") == 2 and actions.count("invite.accept") == 2


def test_expired_invite_is_refused(api: Api) -> None:
    alice, bob = api.user("alice"), api.user("bob")
    api.room("r", owner=alice)

    async def expired(meta: Any) -> str:
        _, code = await meta.create_invite("r", Role.editor, alice.user_id, -1)
        return str(code)

    code = api.server.with_meta(expired)
    assert_error(bob.http.post(f"/invites/{code}/accept"), 404, "not_found")
    assert_error(bob.http.get("/rooms/r"), 403, "forbidden")


def test_email_invite_matches_only_a_verified_email(api: Api) -> None:
    alice = api.user("alice")
    pretender = api.user("pretender", email="dana@example.com", verified=False)
    stranger = api.user("stranger", email="someone@example.com", verified=True)
    dana = api.user("dana", email="Dana@Example.com", verified=True)
    api.room("r", owner=alice)
    code = alice.http.post(
        "/rooms/r/invites", json={"role": "editor", "email": "dana@example.com"}
    ).json()["code"]
    assert_error(pretender.http.post(f"/invites/{code}/accept"), 403, "forbidden")
    assert_error(stranger.http.post(f"/invites/{code}/accept"), 403, "forbidden")
    assert dana.http.post(f"/invites/{code}/accept").json() == {"room": "r", "role": "editor"}
    assert_error(pretender.http.post(f"/invites/{code}/accept"), 404, "not_found")


def test_invite_refusals(api: Api) -> None:
    alice, bob = api.user("alice"), api.user("bob")
    api.room("r", owner=alice, **{bob.user_id: "editor"})
    assert_error(bob.http.post("/rooms/r/invites", json={"role": "viewer"}), 403, "forbidden")
    assert_error(alice.http.post("/rooms/r/invites", json={"ttl": 0}), 400, "bad_request")
    assert_error(alice.http.post("/rooms/r/invites", json={"ttl": 10**9}), 400, "bad_request")
    assert_error(alice.http.post("/rooms/r/invites", json={"role": "boss"}), 400, "bad_request")
    assert_error(alice.http.post("/rooms/r/invites", json={"email": "nope"}), 400, "bad_request")
    assert_error(api.anonymous().post("/invites/x/accept"), 401, "unauthorized")


def test_invite_codes_stay_out_of_the_log(api: Api) -> None:
    alice, bob = api.user("alice"), api.user("bob")
    api.room("r", owner=alice)
    code = alice.http.post("/rooms/r/invites", json={"role": "viewer"}).json()["code"]
    assert bob.http.post(f"/invites/{code}/accept").status_code == 200
    api.server.terminate()
    assert code not in api.server.log()
