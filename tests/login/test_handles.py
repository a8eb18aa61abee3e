"""Handles from a real identity provider: ``preferred_username`` made unique (``ann``, then
``ann-2``), kept across later logins, even after the user changed it."""

from __future__ import annotations

import httpx

from tests.login.conftest import OidcSetup
from tests.login.test_login import browser_client, login


def _me(setup: OidcSetup, client: httpx.Client) -> dict[str, object]:
    r = client.get(setup.server.http_url + "/api/v1/me")
    assert r.status_code == 200, r.text
    body: dict[str, object] = r.json()
    return body


def test_preferred_username_made_unique_and_stable(oidc_setup: OidcSetup) -> None:
    base = oidc_setup.server.http_url
    with browser_client() as first, browser_client() as second:
        login(first, oidc_setup, "ann")
        login(second, oidc_setup, "ann+2")  # another account preferring "ann"
        ann, other = _me(oidc_setup, first), _me(oidc_setup, second)
        assert ann["handle"] == "ann" and other["handle"] == "ann-2"
        assert ann["name"] == "User ann" and ann["private_read_markers"] is False
        r = first.patch(base + "/api/v1/me", json={"handle": "Annie"}, headers={"origin": base})
        assert r.status_code == 200 and r.json()["handle"] == "annie", r.text
        r = second.patch(base + "/api/v1/me", json={"handle": "ANNIE"}, headers={"origin": base})
        assert r.status_code == 409 and r.json()["error"]["code"] == "conflict"
        r = second.patch(base + "/api/v1/me", json={"handle": "annie"})  # no Origin: CSRF
        assert r.status_code == 403
    with browser_client() as again:
        login(again, oidc_setup, "ann")
        assert _me(oidc_setup, again)["handle"] == "annie", "a later login keeps the handle"
    with browser_client() as third:
        login(third, oidc_setup, "ann+3")
        assert _me(oidc_setup, third)["handle"] == "ann", "freed by the change"
