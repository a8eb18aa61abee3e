"""Serving the workspace: the shell (``index.html``), its hashed assets and the service worker.

- ``/`` and the app's own paths (``/r/...``, ``/invite/{code}``) answer the shell, never cached
  (``no-store``: a new bundle is picked up at the next load), with ``<base href>`` set to the
  public URL's path so the relative asset names work under a proxy's sub-path. In dev mode a
  browser without a session gets the dev login page instead (401): nothing but that page is
  reachable without the token.
- ``/assets/{name}``: only names the manifest lists; their names carry their content hash, so
  they are cached for a year (``immutable``).
- ``/sw.js``: the service worker keeps the shell for offline use; browsers find it by URL, so
  its name is fixed and it is revalidated on every load.

Every answer carries the CSP below: scripts only from this origin (the shell has no inline
script), nothing may frame the app. The shell's CSP also names a nonce, fresh per answer, for
``<style>`` elements: CodeMirror mounts its themes as a ``<style>`` element in the document head
(style-mod; only shadow roots get constructable sheets) and puts the nonce the shell carries
(``<meta name="csp-nonce">``, read by the app: ``EditorView.cspNonce``) on it.
"""

from __future__ import annotations

import html
import secrets
from pathlib import Path
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from collab.login import pages
from collab.login.session import current_user
from collab.services import services
from collab.web.bundle import BUILD_COMMAND, Manifest


def csp(style_nonce: str | None = None) -> str:
    """The workspace's Content-Security-Policy (with the shell's ``<style>`` nonce, if any)."""
    nonce = f" 'nonce-{style_nonce}'" if style_nonce else ""
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            f"style-src 'self'{nonce}",
            # Relaxed for style *attributes* only: the editors' remote cursors carry each
            # user's colour in a style attribute (y-codemirror.next's decorations, CodeMirror's
            # own layout). Inline <style> elements still need the nonce.
            "style-src-attr 'unsafe-inline'",
            "img-src 'self' data:",
            "connect-src 'self'",
            "object-src 'none'",
            "base-uri 'self'",
            "frame-ancestors 'none'",
        ]
    )


CSP = csp()
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}
IMMUTABLE = "public, max-age=31536000, immutable"


def base_path(request: Request) -> str:
    """The path the app lives under, with a trailing slash (``/`` or ``/collab/``)."""
    public = services(request).settings.public_url
    path = urlsplit(public).path if public else request.scope.get("root_path", "")
    return path.rstrip("/") + "/"


def shell(request: Request, manifest: Manifest) -> Response:
    nonce = secrets.token_urlsafe(18)
    page = manifest.index_template.replace("{{base}}", html.escape(base_path(request)))
    page = page.replace("{{nonce}}", nonce)
    headers = {
        **SECURITY_HEADERS,
        "Content-Security-Policy": csp(nonce),
        "Cache-Control": "no-store",
    }
    return HTMLResponse(page, headers=headers)


def web_routes(manifest: Manifest | None) -> list[BaseRoute]:
    """The workspace's routes; without a bundle (an app built in-process by a test) ``/``
    says what to run instead (``collab serve`` itself refuses to start without one)."""

    async def app_page(request: Request) -> Response:
        shared = services(request)
        if shared.dev_mode and await current_user(request) is None:
            return pages.dev_refusal_page()
        if manifest is None:
            text = f"The workspace is not built: run `{BUILD_COMMAND}` in the checkout."
            return PlainTextResponse(text, status_code=503, headers={"Cache-Control": "no-store"})
        return shell(request, manifest)

    async def asset(request: Request) -> Response:
        name = "assets/" + str(request.path_params["name"])
        if manifest is None or name not in manifest.files:
            return PlainTextResponse("not found", status_code=404)
        headers = {**SECURITY_HEADERS, "Cache-Control": IMMUTABLE}
        return FileResponse(Path(manifest.root, name), headers=headers)

    async def service_worker(request: Request) -> Response:
        if manifest is None:
            return PlainTextResponse("not found", status_code=404)
        headers = {**SECURITY_HEADERS, "Cache-Control": "no-cache"}
        return FileResponse(manifest.root / "sw.js", headers=headers, media_type="text/javascript")

    return [
        Route("/", app_page, methods=["GET"], name="home"),
        Route("/r/{rest:path}", app_page, methods=["GET"], name="app_room"),
        Route("/invite/{code}", app_page, methods=["GET"], name="app_invite"),
        Route("/assets/{name}", asset, methods=["GET"], name="asset"),
        Route("/sw.js", service_worker, methods=["GET"], name="service_worker"),
    ]
