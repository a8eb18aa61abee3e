"""Invite links: single use, expiry, the verified-email rule; an invite grants only what its
creator may still grant (issue 8, item 1); owners list and revoke them."""

from __future__ import annotations

import time
from typing import Any

import pytest

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
    assert_error(bob.http.get("/rooms/r"), 404, "not_found")


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


def test_a_removed_owner_cannot_regain_the_room_with_an_earlier_invite(api: Api) -> None:
    """Issue 8, item 1, the review's exact repro: owner A adds B as owner; B creates an owner
    invite; A removes B; B accepts its own invite (was: 200, owner) and removes A."""
    a, b = api.user("a"), api.user("b")
    api.room("r", owner=a)
    assert (
        a.http.post("/rooms/r/members", json={"user_id": b.user_id, "role": "owner"}).status_code
        == 201
    )
    code = b.http.post("/rooms/r/invites", json={"role": "owner"}).json()["code"]
    assert a.http.delete(f"/rooms/r/members/{b.user_id}").status_code == 204
    assert_error(b.http.post(f"/invites/{code}/accept"), 404, "not_found")
    assert_error(b.http.delete(f"/rooms/r/members/{a.user_id}"), 404, "not_found")
    members = a.http.get("/rooms/r/members").json()["items"]
    assert [(m["user_id"], m["role"]) for m in members] == [(a.user_id, "owner")]
    events = a.http.get("/rooms/r/audit").json()["items"]
    removal = next(e for e in events if e["action"] == "member.remove")
    assert removal["detail"]["invites_voided"] == 1
    listed = {i["id"]: i["status"] for i in a.http.get("/rooms/r/invites").json()["items"]}
    assert list(listed.values()) == ["voided"]


def test_a_demoted_owners_invites_grant_nothing(api: Api) -> None:
    """Demotion voids the creator's invites; and an invite whose creator lost the owner role
    some other way (here: behind the API's back) is refused when it is accepted."""
    a, b, c = api.user("a"), api.user("b"), api.user("c")
    api.room("r", owner=a, **{b.user_id: "owner"})
    voided = b.http.post("/rooms/r/invites", json={"role": "editor"}).json()["code"]
    r = a.http.patch(f"/rooms/r/members/{b.user_id}", json={"role": "editor"})
    assert r.status_code == 200
    assert_error(c.http.post(f"/invites/{voided}/accept"), 404, "not_found")
    assert a.http.patch(f"/rooms/r/members/{b.user_id}", json={"role": "owner"}).status_code == 200
    stale = b.http.post("/rooms/r/invites", json={"role": "owner"}).json()["code"]
    api.server.with_meta(lambda meta: meta.set_member("r", b.user_id, Role.viewer))
    assert_error(c.http.post(f"/invites/{stale}/accept"), 404, "not_found")
    assert_error(c.http.get("/rooms/r"), 404, "not_found")


def test_list_and_revoke_invites(api: Api) -> None:
    alice, bob = api.user("alice"), api.user("bob")
    api.room("r", owner=alice)
    made = [
        alice.http.post("/rooms/r/invites", json={"role": role, "ttl": 600}).json()
        for role in ("viewer", "editor")
    ]
    r = alice.http.get("/rooms/r/invites")
    assert r.status_code == 200
    items = r.json()["items"]
    assert [(i["id"], i["role"], i["status"]) for i in items] == [
        (made[0]["id"], "viewer", "pending"),
        (made[1]["id"], "editor", "pending"),
    ]
    assert all("code" not in i and "url" not in i for i in items)
    assert not any(m["code"] in r.text for m in made), "a listing never shows a code"
    page = alice.http.get("/rooms/r/invites", params={"limit": 1}).json()
    assert len(page["items"]) == 1 and page["next_cursor"]
    assert alice.http.delete(f"/rooms/r/invites/{made[1]['id']}").status_code == 204
    assert_error(bob.http.post(f"/invites/{made[1]['code']}/accept"), 404, "not_found")
    assert_error(alice.http.delete(f"/rooms/r/invites/{made[1]['id']}"), 404, "not_found")
    assert_error(alice.http.delete("/rooms/r/invites/" + "x" * 300), 404, "not_found")
    statuses = [i["status"] for i in alice.http.get("/rooms/r/invites").json()["items"]]
    assert statuses == ["pending", "revoked"]
    # Another room's invite cannot be revoked through this one.
    api.room("s", owner=alice)
    other = alice.http.post("/rooms/s/invites", json={}).json()["id"]
    assert_error(alice.http.delete(f"/rooms/r/invites/{other}"), 404, "not_found")
    events = alice.http.get("/rooms/r/audit").json()["items"]
    actions = [e["action"] for e in events]
    assert "invite.revoke" in actions and "invite.list" in actions
    revoked = next(e for e in events if e["action"] == "invite.revoke")
    assert revoked["target"] == made[1]["id"] and revoked["actor"] == alice.user_id


def test_list_and_revoke_are_for_owners_only(api: Api) -> None:
    """Every role, a non-member (the answer of a missing room), anonymous, a revoked token and
    a room token (even an owner's: it stands for one room, not the user at large)."""
    owner = api.user("owner")
    members = {role: api.user(role) for role in ("editor", "commenter", "viewer")}
    api.room("r", owner=owner, **{u.user_id: role for role, u in members.items()})
    invite = owner.http.post("/rooms/r/invites", json={}).json()["id"]
    for user in members.values():
        assert_error(user.http.get("/rooms/r/invites"), 403, "forbidden")
        assert_error(user.http.delete(f"/rooms/r/invites/{invite}"), 403, "forbidden")
    stranger = api.user("stranger")
    for room in ("r", "missing"):
        assert_error(stranger.http.get(f"/rooms/{room}/invites"), 404, "not_found")
        assert_error(stranger.http.delete(f"/rooms/{room}/invites/{invite}"), 404, "not_found")
    assert_error(api.anonymous().get("/rooms/r/invites"), 401, "unauthorized")
    revoked = api.user("revoked")
    api.room("t", owner=revoked)
    revoked_id = revoked.http.get("/tokens").json()["items"][0]["id"]
    assert revoked.http.delete(f"/tokens/{revoked_id}").status_code == 204
    assert_error(revoked.http.get("/rooms/t/invites"), 401, "unauthorized")
    room_token = owner.http.post("/rooms/r/tokens", json={"role": "owner"}).json()["token"]
    scoped = api.bearer(room_token)
    assert_error(scoped.get("/rooms/r/invites"), 403, "forbidden")
    assert_error(scoped.delete(f"/rooms/r/invites/{invite}"), 403, "forbidden")
    assert owner.http.get("/rooms/r/invites").json()["items"][0]["id"] == invite
    assert_error(owner.http.get("/rooms/r/invites", params={"cursor": "!!"}), 400, "bad_request")
    big = owner.http.request("DELETE", f"/rooms/r/invites/{invite}", content=b"x" * 70_000)
    assert big.status_code == 204  # the route reads no body


def test_invite_lifetime_is_capped_at_a_week(api: Api) -> None:
    alice = api.user("alice")
    api.room("r", owner=alice)
    week = 7 * 24 * 3600
    assert alice.http.post("/rooms/r/invites", json={"ttl": week}).status_code == 201
    assert_error(alice.http.post("/rooms/r/invites", json={"ttl": week + 1}), 400, "bad_request")
    default = alice.http.post("/rooms/r/invites", json={}).json()
    assert default["expires_at"] - default["created_at"] == pytest.approx(week)


def test_revoke_flood_is_cheap_and_changes_nothing(api: Api) -> None:
    alice = api.user("alice")
    api.room("r", owner=alice)
    invite = alice.http.post("/rooms/r/invites", json={}).json()
    started = time.monotonic()
    for i in range(200):
        assert alice.http.delete(f"/rooms/r/invites/guess{i}").status_code == 404
    assert time.monotonic() - started < 30
    items = alice.http.get("/rooms/r/invites").json()["items"]
    assert [(i["id"], i["status"]) for i in items] == [(invite["id"], "pending")]
