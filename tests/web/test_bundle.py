"""The workspace bundle: built from a checkout's web/ (rebuilt when the sources change, a
refusal saying what to run when it cannot be), served with hashed names, a CSP and no inline
script, index.html never cached (issue 10, Done means 6; a fresh checkout is Done means 1)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from collab.web import bundle
from collab.web.routes import CSP, csp
from tests.support.server import CollabServer, free_port
from tests.support.waiting import poll_until

ROOT = Path(__file__).resolve().parents[2]


def missing(reason: str) -> None:
    """Skip without a tool a fresh machine may lack; under CI=true that is a failure."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"required under CI=true: {reason}")
    pytest.skip(reason)


def copy_sources(tmp_path: Path) -> Path:
    """A copy of web/ whose node_modules is the checkout's (esbuild resolves through it)."""
    if not (ROOT / "web" / "node_modules" / "esbuild").is_dir():
        missing("web/node_modules missing: npm ci --prefix web (scripts/test does it)")
    sources = tmp_path / "web"
    shutil.copytree(ROOT / "web", sources, ignore=shutil.ignore_patterns("node_modules"))
    (sources / "node_modules").symlink_to(ROOT / "web" / "node_modules")
    return sources


def test_a_checkout_rebuilds_changed_sources_and_refuses_what_it_cannot_build(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sources, dist = copy_sources(tmp_path), tmp_path / "dist"
    first = bundle.ensure_bundle(sources, dist)  # none yet: built
    assert first.source_hash == bundle.source_hash(sources)
    assert re.fullmatch(r"assets/main-[A-Z0-9]{8}\.js", first.assets["main.js"])
    assert bundle.ensure_bundle(sources, dist) == first  # unchanged: not rebuilt
    styles = sources / "src" / "styles.css"
    styles.write_text(styles.read_text() + "\n.changed { color: red; }\n")
    second = bundle.ensure_bundle(sources, dist)
    assert second.source_hash != first.source_hash
    assert second.assets["main.css"] != first.assets["main.css"]  # a new content hash
    assert not list(tmp_path.glob("dist.*"))  # no staging or old copies left behind
    # Changed again, and no Node to build with: a refusal that says what to run.
    styles.write_text(styles.read_text() + "\n.again { color: blue; }\n")
    monkeypatch.setenv("PATH", str(tmp_path / "nothing-here"))
    with pytest.raises(bundle.BundleError, match=r"npm ci --prefix web && node web/build\.mjs"):
        bundle.ensure_bundle(sources, dist)
    # An installation (no web/ beside it) serves what it carries, or says how to get one.
    assert bundle.ensure_bundle(tmp_path / "absent", dist) == second
    with pytest.raises(bundle.BundleError, match=r"reinstall collab with Node\.js"):
        bundle.ensure_bundle(tmp_path / "absent", tmp_path / "empty")


def test_serve_refuses_a_stale_bundle_it_cannot_rebuild(tmp_path: Path) -> None:
    """`collab serve` from a checkout whose bundle is stale and whose web/ has no packages."""
    sources = copy_sources(tmp_path)
    (sources / "node_modules").unlink()
    code = (
        "import sys; from pathlib import Path; from collab.web import bundle\n"
        f"bundle.SOURCES = Path({str(sources)!r}); bundle.DIST = Path({str(tmp_path / 'd')!r})\n"
        "from collab.cli import main\n"
        "sys.argv = ['collab', 'serve', '--store', 'memory://', '--port', '0']\n"
        "main()\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env
    )
    assert out.returncode == 1, out.stderr
    assert "web/node_modules is missing" in out.stderr
    assert "npm ci --prefix web && node web/build.mjs" in out.stderr


def test_hashed_assets_csp_and_an_uncached_shell(server: CollabServer) -> None:
    with httpx.Client(base_url=server.http_url, timeout=10) as http:
        assert http.get("/login", params={"token": server.dev_token}).status_code == 303
        shell = http.get("/")
        assert shell.status_code == 200
        assert shell.headers["cache-control"] == "no-store"
        policy = shell.headers["content-security-policy"]
        nonce = re.findall(r'<meta name="csp-nonce" content="([^"]+)">', shell.text)[0]
        assert policy == csp(nonce) and len(nonce) >= 24
        assert http.get("/").headers["content-security-policy"] != policy  # fresh each time
        assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy
        assert "script-src 'self';" in policy
        assert "unsafe-inline" not in policy.split("style-src-attr")[0]
        assert shell.headers["x-frame-options"] == "DENY"
        # No inline script: every <script> loads a file; no inline handlers or styles either.
        scripts = re.findall(r"<script\b([^>]*)>(.*?)</script>", shell.text, re.S)
        assert scripts and all('src="' in attrs and not body.strip() for attrs, body in scripts)
        assert not re.search(r"\son\w+=|\sstyle=", shell.text)
        assets = re.findall(r'(?:src|href)="(assets/[^"]+)"', shell.text)
        assert len(assets) == 2
        for asset in assets:
            assert re.fullmatch(r"assets/main-[A-Z0-9]{8}\.(js|css)", asset), asset
            answer = http.get("/" + asset)
            assert answer.status_code == 200
            assert answer.headers["cache-control"] == "public, max-age=31536000, immutable"
            assert answer.headers["content-security-policy"] == CSP
        assert http.get("/assets/../manifest.json").status_code == 404
        assert http.get("/assets/main-NOTBUILT.js").status_code == 404
        assert http.get("/sw.js").headers["cache-control"] == "no-cache"
        # The app's own paths answer the same shell (the app routes in the browser).
        other = http.get("/r/some-room/d/doc").text
        assert other.replace(re.findall(r'csp-nonce" content="([^"]+)"', other)[0], nonce) == (
            shell.text
        )
    # Signed out, dev mode shows the dev login page, never the app.
    assert httpx.get(server.http_url + "/r/x", timeout=10).status_code == 401


@pytest.mark.slow
def test_a_fresh_checkout_builds_and_serves_with_the_readme_command(tmp_path: Path) -> None:
    """Done means 1: the README's first command, in a fresh clone, builds and serves the
    workspace; the printed dev login URL opens it in Chromium."""
    from tests.support.browser import launch_chromium

    if shutil.which("node") is None:
        missing("node missing")
    checkout = tmp_path / "checkout"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(checkout)], check=True, timeout=120)
    assert not (checkout / "collab" / "web" / "dist").exists()
    port = free_port()
    command = (
        "python3 -m venv .venv && .venv/bin/pip install -q . && "
        f".venv/bin/collab serve --port {port} --store sqlite:///c.db"
    )
    log_path = tmp_path / "serve.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            ["bash", "-c", f"exec bash -c {command!r}"],
            cwd=checkout,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:

        def login_url() -> str | None:
            assert proc.poll() is None, log_path.read_text()
            found = re.search(r"http://\S+/login\?token=\S+", log_path.read_text())
            return found[0] if found else None

        assert poll_until(lambda: login_url() is not None, 600, interval=0.5), log_path.read_text()
        url = login_url()
        assert url is not None
        with launch_chromium() as browser:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.goto(url)
            page.wait_for_selector("text=Start your first room")
            page.screenshot(path=str(tmp_path / "fresh-checkout.png"))
            assert page.text_content("#user-name") == "Dev user"
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(30)
