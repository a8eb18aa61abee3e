"""The log commands deploy/ gives (``journalctl -u collab -o cat | jq ...``) work on what a
service's journal holds: ``collab serve``'s stdout and stderr together, as systemd collects
them. Its JSON log lines share that stream with the plain lines ``serve`` prints on stdout
(where it serves, where the workspace is), so a bare ``jq`` stopped at the first of them
("parse error: Invalid numeric literal at line 1, column 7") and showed nothing."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
from pathlib import Path

import pytest

from tests.support.server import CollabServer

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
FILES = ("README.md", "collab.service", "collab-node@.service")
# "... -o cat | jq ARGS": the jq program as given, up to the end of its quoted filter.
_JQ = re.compile(r"journalctl .* -o cat \| (jq(?: -\w+)* (?:'[^']*'|\S+))")


def _commands() -> list[tuple[str, list[str]]]:
    found = []
    for name in FILES:
        for match in _JQ.finditer((DEPLOY / name).read_text("utf-8")):
            found.append((name, shlex.split(match[1])))
    return found


def test_every_deploy_file_gives_a_log_command() -> None:
    assert {name for name, _ in _commands()} == set(FILES)


@pytest.mark.parametrize("where, argv", _commands(), ids=lambda v: str(v))
def test_the_log_command_reads_a_real_journal(
    server: CollabServer, where: str, argv: list[str]
) -> None:
    server.terminate()  # its whole run, start banner to shutdown, as the journal has it
    journal = server.log()
    assert journal.startswith("collab: serving on"), journal[:200]
    result = subprocess.run(argv, input=journal, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, (where, argv, result.stderr)
    assert result.stderr == "", result.stderr
    if "select" not in argv[-1]:  # every JSON line shown, as JSON
        shown = subprocess.run(
            ["jq", "-c", "."], input=result.stdout, capture_output=True, text=True, timeout=30
        ).stdout.splitlines()
        assert len(shown) >= 5 and all("level" in json.loads(line) for line in shown), shown
