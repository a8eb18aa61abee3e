"""`collab serve` on a terminal is for people (issue 10, First run): human-readable log lines
when stderr is a TTY (JSON for pipes; ``--log-format`` still wins), the login URL printed last,
and ``--open`` opening it in the browser ($BROWSER here, as Python's webbrowser honours it)."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.support.server import free_port

ROOT = Path(__file__).resolve().parents[2]


def serve_on_a_terminal(tmp_path: Path, *args: str, **env: str) -> tuple[str, Path]:
    """Run `collab serve` with a pseudo-terminal as stdout and stderr until it printed the
    login URL (and a bit more); returns what the terminal showed."""
    main, secondary = pty.openpty()
    environ = {**os.environ, "PYTHONPATH": str(ROOT), "COLLAB_DEV_TOKEN": "first-run-test-token"}
    environ.pop("COLLAB_LOG_FORMAT", None)
    environ.update(env)
    proc = subprocess.Popen(
        [sys.executable, "-m", "collab", "serve", "--port", str(free_port()), *args],
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        stdout=secondary,
        stderr=secondary,
        env=environ,
    )
    os.close(secondary)
    shown = b""
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([main], [], [], 0.2)
            if ready:
                try:
                    shown += os.read(main, 65536)
                except OSError:
                    break
            if b"/login?token=" in shown and shown.endswith(b"\n"):
                time.sleep(0.5)  # anything printed after the URL would show now
                while select.select([main], [], [], 0.2)[0]:
                    shown += os.read(main, 65536)
                break
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)
        os.close(main)
    return shown.decode("utf-8", "replace").replace("\r\n", "\n"), tmp_path


def test_a_terminal_gets_text_lines_and_the_url_last(tmp_path: Path) -> None:
    shown, _ = serve_on_a_terminal(tmp_path)
    lines = [line for line in shown.splitlines() if line.strip()]
    url = r"    http://127\.0\.0\.1:\d+/login\?token=first-run-test-token"
    assert re.fullmatch(url, lines[-1]), lines[-3:]
    logged = [line for line in lines if " INFO " in line]
    assert logged, shown
    assert not any(line.lstrip().startswith("{") for line in lines), shown  # no JSON
    # --log-format still wins.
    shown, _ = serve_on_a_terminal(tmp_path, "--log-format", "json")
    assert any(json.loads(line)["level"] for line in shown.splitlines() if line.startswith("{"))


def test_open_opens_the_login_url_in_a_browser(tmp_path: Path) -> None:
    opened = tmp_path / "opened.txt"
    browser = tmp_path / "browser.sh"
    browser.write_text(f'#!/bin/sh\necho "$1" > {opened}\n')
    browser.chmod(0o755)
    shown, _ = serve_on_a_terminal(tmp_path, "--open", BROWSER=str(browser))
    deadline = time.monotonic() + 10
    while not opened.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    url = re.findall(r"http://\S+/login\?token=\S+", shown)[-1]
    assert opened.read_text().strip() == url
