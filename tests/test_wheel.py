"""The built wheel, installed non-editable into a fresh venv, migrates and serves."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import httpx
import pytest

from tests.support.server import free_port
from tests.support.waiting import poll_until

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_wheel_in_a_fresh_venv_migrates_and_serves(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(ROOT)],
        check=True,
        timeout=300,
    )
    (wheel,) = dist.glob("collab-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "collab/_migrations/sqlite/0001_documents.sql" in names
    assert "collab/py.typed" in names  # PEP 561: type checkers read collab's hints
    # The workspace bundle, built by the hatch hook (Node is on every machine that runs this).
    assert "collab/web/dist/manifest.json" in names and "collab/web/dist/index.html" in names
    assert any(n.startswith("collab/web/dist/assets/main-") for n in names)
    assert not any("node_modules" in n for n in names)

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    subprocess.run(
        [str(venv / "bin" / "pip"), "install", "-q", str(wheel)], check=True, timeout=600
    )
    collab = str(venv / "bin" / "collab")
    work = tmp_path / "run"
    work.mkdir()
    out = subprocess.run(
        [collab, "migrate", "--store", "sqlite:///data/c.db"],
        cwd=work,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert "applied 0001_documents" in out.stdout
    assert (work / "data" / "c.db").exists()

    port = free_port()
    log_path = work / "serve.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [
                collab,
                "serve",
                "--port",
                str(port),
                "--store",
                "sqlite:///data/c.db",
                "--dev-token",
                "wheel-test-token",
            ],
            cwd=work,
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def ready() -> bool:
        assert proc.poll() is None, f"collab serve exited:\n{log_path.read_text()}"
        try:
            return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        assert poll_until(ready, 20, interval=0.1), f"did not serve:\n{log_path.read_text()}"
        script = (
            "import asyncio\n"
            "from websockets.asyncio.client import connect\n"
            "async def main():\n"
            f"    url = 'ws://127.0.0.1:{port}/ws/r/d?token=wheel-test-token'\n"
            "    async with connect(url) as ws:\n"
            "        await ws.send(bytes([0, 0, 1, 0]))\n"
            "        first = await ws.recv()\n"
            "        assert first[:2] == bytes([0, 0]), first\n"
            "asyncio.run(main())\n"
        )
        subprocess.run([str(venv / "bin" / "python"), "-c", script], check=True, timeout=30)
        # The dev login URL opens the workspace the wheel carries.
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            assert http.get("/login", params={"token": "wheel-test-token"}).status_code == 303
            shell = http.get("/")
            assert shell.status_code == 200 and 'id="app"' in shell.text
            script_src = shell.text.split('<script type="module" src="')[1].split('"')[0]
            assert http.get("/" + script_src).status_code == 200
    finally:
        proc.terminate()
        proc.wait(15)
