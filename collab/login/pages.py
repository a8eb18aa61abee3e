"""The few HTML pages of the login flow, until the workspace (web/) takes over ``/``.

Every page is ``no-store``, may not be framed (a framed page could be clicked through by the
page around it), and escapes whatever it shows; dev mode carries a banner.
"""

from __future__ import annotations

import html

from starlette.responses import HTMLResponse

from collab.meta import User


def page(title: str, body: str, *, dev: bool, status: int = 200) -> HTMLResponse:
    banner = (
        "<p id='dev-mode' style='background:#fc0;padding:.5em;font-weight:bold'>"
        "DEV MODE: no identity provider configured; loopback only.</p>"
        if dev
        else ""
    )
    return HTMLResponse(
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"</head><body>{banner}<h1>{html.escape(title)}</h1>{body}</body></html>",
        status_code=status,
        headers={
            "Cache-Control": "no-store",
            "X-Frame-Options": "DENY",
            "Content-Security-Policy": "frame-ancestors 'none'",
        },
    )


def dev_refusal_page(reason: str = "") -> HTMLResponse:
    """401: dev mode lets in only whoever holds the printed login token."""
    extra = f"<p><strong>{html.escape(reason)}</strong></p>" if reason else ""
    body = (
        f"{extra}<p>No identity provider is configured, so this server only lets in whoever "
        "holds its login token. Open the login URL that <code>collab serve</code> printed in "
        "its terminal when it started (it ends in <code>/login?token=...</code>). Set "
        "<code>COLLAB_DEV_TOKEN</code> to keep the same token across restarts.</p>"
        "<p>To try collaboration as several people on this machine, sign in with a display "
        "name in each browser (or private window): each name is a user of its own.</p>"
        "<form method='get' action='login'>"
        "<p><label>Login token <input name='token' type='password' required "
        "autocomplete='off'></label></p>"
        "<p><label>Display name (optional) <input name='name' maxlength='64' "
        "autocomplete='nickname'></label></p>"
        "<p><button type='submit'>Sign in</button></p></form>"
    )
    return page("Login required", body, dev=True, status=401)


def signed_in_page(user: User, *, dev: bool) -> HTMLResponse:
    who = html.escape(user.name or user.email or user.id)
    email = f" &lt;{html.escape(user.email)}&gt;" if user.email else ""
    body = (
        f"<p>Signed in as <strong id='user-name'>{who}</strong>{email}.</p>"
        "<form method='post' action='logout'><button type='submit'>Log out</button></form>"
    )
    return page("collab", body, dev=dev)


def dev_signed_out_page() -> HTMLResponse:
    return page(
        "Signed out",
        "<p>You are signed out. Open the login URL printed by <code>collab serve</code> "
        "to sign in again.</p>",
        dev=True,
    )


def logout_confirm_page(user: User, *, dev: bool) -> HTMLResponse:
    """GET /logout: ask first. Only the form's POST (Origin-checked) ends the session, so a
    link or image elsewhere cannot log anyone out."""
    who = html.escape(user.name or user.email or user.id)
    body = (
        f"<p>Log out <strong id='user-name'>{who}</strong>? Open documents of this browser "
        "are disconnected.</p>"
        "<form method='post' action='logout'><button type='submit'>Log out</button></form>"
    )
    return page("Log out", body, dev=dev)


def signed_out_page(*, dev: bool) -> HTMLResponse:
    """GET /logout without a live session: nothing to confirm."""
    if dev:
        return dev_signed_out_page()
    return page("Signed out", "<p>You are not signed in. <a href='login'>Log in</a></p>", dev=False)


def logout_refused_page() -> HTMLResponse:
    """403: a POST /logout from another site (or without an Origin) changes nothing."""
    body = (
        "<p>This logout request did not come from this site, so nothing changed. "
        "Use the <a href='logout'>logout page</a> to log out.</p>"
    )
    return page("Logout refused", body, dev=False, status=403)
