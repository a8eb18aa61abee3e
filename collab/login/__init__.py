"""The browser's way in: OIDC login (or dev mode's token), callback, logout, and their pages.

``routes`` (the HTTP endpoints), ``session`` (the browser's server-side session: who is signed
in, start one, revoke one and close its sockets), ``pages`` (the little HTML there is) and
``middleware`` (the signed login cookie Authlib's state rides on). Identity itself (tokens,
sessions' cookies, the OIDC client, policy) lives in ``collab.auth``.
"""
