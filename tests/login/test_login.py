"""OIDC login against a real provider (oidc-provider under node) and a real collab process.

Driven with httpx (the provider's dev login and consent forms submitted by hand) and once with
headless Chromium. The negative cases are the attacks the login must refuse: a replayed
callback, login CSRF, tampered state, a missing PKCE challenge, an unregistered redirect URI,
a mixed-up issuer (RFC 9207), a token response without an ID token, a cookie reused after
logout.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx

from tests.login.conftest import OidcSetup
from tests.support.oidcprovider import walk_provider


@contextmanager
def browser_client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10, follow_redirects=False) as client:
        yield client


def start_login(client: httpx.Client, setup: OidcSetup, query: str = "") -> str:
    response = client.get(setup.server.http_url + "/login" + query)
    assert response.status_code == 302, response.text
    location = response.headers["location"]
    assert location.startswith(setup.provider.issuer + "/auth?")
    return location


def authorize(client: httpx.Client, setup: OidcSetup, login: str = "alice") -> str:
    """Start a login and sign in at the provider; the callback URL, not yet visited."""
    walk = walk_provider(client, start_login(client, setup), setup.callback_url, login)
    assert walk.location, walk.pages
    return walk.location


def login(client: httpx.Client, setup: OidcSetup, name: str = "alice") -> httpx.Response:
    response = client.get(authorize(client, setup, name))
    assert response.status_code == 303, response.text
    return response


def error_code(response: httpx.Response, status: int = 400) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body["error"]) == {"code", "message"}
    return str(body["error"]["code"])


def with_query(url: str, **changes: str | None) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    for key, value in changes.items():
        if value is None:
            query.pop(key, None)
        else:
            query[key] = value
    return urlunsplit(parts._replace(query=urlencode(query)))


def whoami(setup: OidcSetup, cookies: httpx.Cookies) -> httpx.Response:
    return httpx.get(setup.server.http_url + "/auth/session", cookies=cookies, timeout=10)


def audit_actions(setup: OidcSetup) -> list[tuple[str, dict[str, object]]]:
    path = setup.server.store.removeprefix("sqlite:///")
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT action, detail FROM audit ORDER BY id").fetchall()
    return [(action, json.loads(detail)) for action, detail in rows]


def test_login_with_httpx(oidc_setup: OidcSetup) -> None:
    with browser_client() as client:
        callback = authorize(client, oidc_setup)
        query = dict(parse_qsl(urlsplit(callback).query))
        assert query["iss"] == oidc_setup.provider.issuer  # the provider sends RFC 9207 iss
        response = client.get(callback)
        assert response.status_code == 303
        assert response.headers["location"] == oidc_setup.server.http_url + "/"
        set_cookie = response.headers["set-cookie"].lower()
        assert "collab_session=" in set_cookie
        assert "httponly" in set_cookie and "samesite=lax" in set_cookie
        secret = client.cookies["collab_session"]
        assert "." not in secret  # a random id, not a signed token or a JWT
        me = client.get(oidc_setup.server.http_url + "/auth/session")
        assert me.status_code == 200
        user = me.json()["user"]
        # Only sub is in the ID token: name, email and picture came from userinfo.
        assert user["name"] == "User alice"
        assert user["email"] == "alice@example.test"
        assert user["picture"] == "https://example.test/alice.png"
        assert user["is_admin"] is True  # COLLAB_ADMINS lists alice's verified email
        home = client.get(oidc_setup.server.http_url + "/")
        assert home.status_code == 200 and 'id="app"' in home.text  # the workspace's shell
    with browser_client() as other:
        login(other, oidc_setup, "bob")
        bob = other.get(oidc_setup.server.http_url + "/auth/session").json()["user"]
        assert bob["name"] == "User bob" and bob["is_admin"] is False
    assert ("login.success", {"via": "oidc"}) in [
        (a, {k: v for k, v in d.items() if k == "via"}) for a, d in audit_actions(oidc_setup)
    ]
    log = oidc_setup.server.log()
    assert "code=***" in log and "state=***" in log
    assert query["code"] not in log and secret not in log


def test_login_page_without_session_redirects_to_provider(oidc_setup: OidcSetup) -> None:
    # `/` is the workspace's shell, which shows a sign-in button to /login when signed out.
    response = httpx.get(oidc_setup.server.http_url + "/", timeout=10)
    assert response.status_code == 200 and 'id="app"' in response.text
    with browser_client() as client:
        params = dict(parse_qsl(urlsplit(start_login(client, oidc_setup)).query))
    assert params["code_challenge_method"] == "S256" and len(params["code_challenge"]) >= 43
    assert params["nonce"] and params["state"]
    assert params["redirect_uri"] == oidc_setup.callback_url
    assert set(params["scope"].split()) == {"openid", "email", "profile"}


def test_replayed_callback_is_refused(oidc_setup: OidcSetup) -> None:
    with browser_client() as client:
        callback = authorize(client, oidc_setup)
        assert client.get(callback).status_code == 303
        assert error_code(client.get(callback)) == "invalid_state"
    with browser_client() as stranger:
        assert error_code(stranger.get(callback)) == "invalid_state"
    assert ("login.failure", "invalid_state") in [
        (a, d.get("reason")) for a, d in audit_actions(oidc_setup)
    ]


def test_login_csrf_code_delivered_to_victim_is_refused(oidc_setup: OidcSetup) -> None:
    with browser_client() as attacker:
        planted = authorize(attacker, oidc_setup, "mallory")
    with browser_client() as victim:
        start_login(victim, oidc_setup)  # the victim has a login of their own in flight
        response = victim.get(planted)
        assert error_code(response) == "invalid_state"
        assert "collab_session" not in victim.cookies
        assert whoami(oidc_setup, victim.cookies).status_code == 401
    with browser_client() as fresh_victim:
        assert error_code(fresh_victim.get(planted)) == "invalid_state"
        assert "collab_session" not in fresh_victim.cookies


def test_tampered_state_is_refused(oidc_setup: OidcSetup) -> None:
    with browser_client() as client:
        callback = authorize(client, oidc_setup)
        state = dict(parse_qsl(urlsplit(callback).query))["state"]
        tampered = with_query(callback, state=state[:-2] + ("AA" if state[-2:] != "AA" else "BB"))
        assert error_code(client.get(tampered)) == "invalid_state"
        assert error_code(client.get(with_query(callback, state=None))) == "invalid_state"
        assert "collab_session" not in client.cookies


def test_expired_callback_is_refused(oidc_setup: OidcSetup) -> None:
    with browser_client() as client:
        callback = authorize(client, oidc_setup)
        # Age the login's stored state past its lifetime, as ten minutes of waiting would.
        path = oidc_setup.server.store.removeprefix("sqlite:///")
        with sqlite3.connect(path) as db:
            aged = db.execute(
                "UPDATE cache SET expires_at = 1 WHERE key LIKE 'authlib:_state_oidc_%'"
            ).rowcount
        assert aged == 1
        assert error_code(client.get(callback)) == "invalid_state"
        assert "collab_session" not in client.cookies


def test_id_token_with_another_nonce_is_refused(oidc_setup: OidcSetup) -> None:
    with browser_client() as client:
        callback = authorize(client, oidc_setup)
        # The login's stored nonce no longer matches the one the provider put in the ID token.
        path = oidc_setup.server.store.removeprefix("sqlite:///")
        with sqlite3.connect(path) as db:
            key, value = db.execute(
                "SELECT key, value FROM cache WHERE key LIKE 'authlib:_state_oidc_%'"
            ).fetchone()
            stored = json.loads(value)
            stored["data"]["nonce"] = "not-the-nonce-sent"
            db.execute("UPDATE cache SET value=? WHERE key=?", (json.dumps(stored), key))
        assert error_code(client.get(callback)) == "invalid_id_token"
        assert "collab_session" not in client.cookies


def test_authorization_request_without_pkce_is_refused_by_the_provider(
    oidc_setup: OidcSetup,
) -> None:
    with browser_client() as client:
        auth_url = start_login(client, oidc_setup)
        stripped = with_query(auth_url, code_challenge=None, code_challenge_method=None)
        walk = walk_provider(client, stripped, oidc_setup.callback_url)
        assert walk.location is not None, walk.pages
        params = dict(parse_qsl(urlsplit(walk.location).query))
        assert params["error"] == "invalid_request" and "code" not in params
        assert "PKCE" in params.get("error_description", "")
        assert error_code(client.get(walk.location)) == "provider_error"


def test_unregistered_redirect_uri_is_refused_by_the_provider(oidc_setup: OidcSetup) -> None:
    with browser_client() as client:
        auth_url = start_login(client, oidc_setup)
        evil = "http://127.0.0.1:9/steal"
        response = client.get(with_query(auth_url, redirect_uri=evil))
        assert response.status_code == 400
        assert "redirect_uri" in response.text
        assert not response.headers.get("location", "").startswith(evil)


def test_wrong_or_missing_iss_is_refused_and_the_code_never_redeemed(
    oidc_setup: OidcSetup,
) -> None:
    with browser_client() as client:
        callback = authorize(client, oidc_setup)
        mixed_up = with_query(callback, iss="https://attacker.example")
        assert error_code(client.get(mixed_up)) == "issuer_mismatch"
        # The login was dropped with it: the genuine response no longer completes.
        assert error_code(client.get(callback)) == "invalid_state"
        assert "collab_session" not in client.cookies
    with browser_client() as client:
        callback = authorize(client, oidc_setup)
        assert error_code(client.get(with_query(callback, iss=None))) == "issuer_mismatch"


def test_token_response_without_id_token_is_refused(oidc_setup: OidcSetup) -> None:
    oidc_setup.provider.drop_id_token()
    with browser_client() as client:
        response = client.get(authorize(client, oidc_setup))
        assert error_code(response) == "missing_id_token"
        assert "collab_session" not in client.cookies


def test_logout_revokes_the_session_and_logs_out_at_the_provider(oidc_setup: OidcSetup) -> None:
    base = oidc_setup.server.http_url
    with browser_client() as client:
        login(client, oidc_setup)
        old = httpx.Cookies({"collab_session": client.cookies["collab_session"]})
        assert whoami(oidc_setup, old).status_code == 200
        response = client.post(base + "/logout", headers={"Origin": base})
        assert response.status_code == 303
        end_session = response.headers["location"]
        params = dict(parse_qsl(urlsplit(end_session).query))
        assert end_session.startswith(oidc_setup.provider.issuer + "/session/end")
        assert params["post_logout_redirect_uri"] == base + "/"
        assert params["id_token_hint"].count(".") == 2
        assert 'collab_session=""' in response.headers["set-cookie"]
        # The old cookie, replayed by anyone, is dead server-side.
        assert whoami(oidc_setup, old).status_code == 401
        # (`/` serves the shell either way; it asks /auth/session, which is 401 above.)
        # The provider's logout confirmation leads back to collab.
        walk = walk_provider(client, end_session, base + "/")
        assert walk.location is not None, walk.pages
        assert walk.location.partition("?")[0] == base + "/"
    with browser_client() as client:
        login(client, oidc_setup)
        old = httpx.Cookies({"collab_session": client.cookies["collab_session"]})
        # GET only asks (a cross-site link logs nobody out); a foreign POST changes nothing.
        assert client.get(base + "/logout").status_code == 200
        assert whoami(oidc_setup, old).status_code == 200
        foreign = client.post(base + "/logout", headers={"Origin": "https://attacker.example"})
        assert foreign.status_code == 403
        assert whoami(oidc_setup, old).status_code == 200
        assert client.post(base + "/logout", headers={"Origin": base}).status_code == 303
        assert whoami(oidc_setup, old).status_code == 401
    actions = [a for a, _ in audit_actions(oidc_setup)]
    assert actions.count("logout") == 2


def test_login_in_headless_chromium(oidc_setup: OidcSetup) -> None:
    from tests.support.browser import launch_chromium

    with launch_chromium() as browser:
        page = browser.new_page()
        # The workspace's login page: one button to the identity provider.
        page.goto(oidc_setup.server.http_url + "/")
        page.click("#login-button")
        page.fill("input[name=login]", "carol")
        page.fill("input[name=password]", "any-password")
        page.click("button[type=submit]")
        page.click("button[type=submit]")  # consent
        page.wait_for_url(oidc_setup.server.http_url + "/")
        assert page.text_content("#user-name") == "User carol"
        cookies = {c["name"]: c for c in page.context.cookies()}
        assert cookies["collab_session"]["httpOnly"] is True
        page.click("text=Log out")
        page.wait_for_url(oidc_setup.provider.issuer + "/session/end*")
