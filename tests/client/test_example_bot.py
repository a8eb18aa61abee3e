"""Done 1 of issue 14: examples/bot.py, run against a real server, answers a command a
y-websocket user posted and edits a doc the user sees; killing and restarting the server
(kill -9) loses no command and answers none twice."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from tests.api.conftest import Actor, Api
from tests.support.jspeer import JsPeer
from tests.support.server import CollabServer, ServerFactory
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.anyio, pytest.mark.node]

BOT = Path(__file__).resolve().parents[2] / "examples" / "bot.py"
HANDLED = re.compile(r"^handled (\d+) ", re.M)


class BotProcess:
    """examples/bot.py in a child process, its output in a file."""

    def __init__(self, server: CollabServer, room: str, token: str, workdir: Path) -> None:
        self.output = workdir / "bot.out"
        env = dict(os.environ, COLLAB_TOKEN=token, PYTHONPATH=str(BOT.parents[1]))
        with open(self.output, "wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, str(BOT), "--url", server.http_url, "--room", room],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def text(self) -> str:
        return self.output.read_text("utf-8", errors="replace")

    def handled(self) -> list[int]:
        return [int(seq) for seq in HANDLED.findall(self.text())]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


@pytest.fixture
def bot_process() -> Iterator[list[BotProcess]]:
    started: list[BotProcess] = []
    yield started
    for bot in started:
        bot.stop()


def post(user: Actor, room: str, text: str, cid: str) -> dict[str, Any]:
    r = user.http.post(f"/rooms/{room}/messages", json={"text": text, "client_id": cid})
    assert r.status_code in (200, 201), r.text
    found: dict[str, Any] = r.json()
    return found


def replies(user: Actor, room: str, message_id: str) -> list[dict[str, Any]]:
    r = user.http.get(f"/rooms/{room}/messages", params={"thread": message_id})
    items: list[dict[str, Any]] = r.json()["items"]
    return items


async def test_the_example_bot_answers_edits_and_survives_a_restart(
    server_factory: ServerFactory, bot_process: list[BotProcess], tmp_path: Path
) -> None:
    server = server_factory()
    api = Api(server)
    alice, bot = api.user("alice"), api.user("rollbot")
    room = api.room("team", owner=api.dev, **{alice.user_id: "editor", bot.user_id: "editor"})
    notes_peer = JsPeer(server.ws_base, f"{room}/notes", {"token": alice.token})
    chat_peer = JsPeer(server.ws_base, f"{room}/chat", {"token": alice.token, "collab": "1"})
    async with notes_peer as notes, chat_peer as chat:
        await notes.wait_event("synced")
        await notes.call({"op": "insert", "index": 0, "text": "Launch plan\nShip the client"})
        runner = BotProcess(server, room, bot.token, tmp_path)
        bot_process.append(runner)
        await wait_until(lambda: "listening" in runner.text(), 20, what=runner.text)

        # A y-websocket user asks over the chat socket (type 101).
        await chat.call(
            {
                "op": "chat_request",
                "request": {"op": "post", "text": "/summary notes", "client_id": "c1"},
            }
        )
        reply = (await chat.call({"op": "chat_replies", "count": 1}))["replies"][0]
        await wait_until(lambda: replies(alice, room, reply["id"]), 20, what=runner.text)
        answer = replies(alice, room, reply["id"])[0]
        assert answer["author"]["id"] == bot.user_id
        assert answer["text"].startswith("Summary of notes: 5 words, 2 lines")
        seen = await notes.call(
            {"op": "wait_text", "contains": "Summary of notes", "timeout_ms": 10000}
        )
        assert seen["text"].startswith("Launch plan\nShip the client\nSummary of notes:")

    # Commands before, across and after a kill -9 of the server: each answered exactly once.
    commands = [post(alice, room, "/roll 2d6", "r0")]
    commands.append(post(alice, room, "/roll", "r1"))
    server.kill9()
    await anyio.sleep(0.5)  # the scenario: the server stays down while the bot retries
    server.start()
    commands += [post(alice, room, f"/roll {n}d6", f"r{n + 2}") for n in range(1, 4)]
    want = {c["seq"] for c in commands}

    async def all_answered() -> bool:
        return want <= set(runner.handled())

    # Within the bot's backoff, not its 30 s poll: the chat socket reconnected and woke it.
    await wait_until(all_answered, 25, what=runner.text)
    assert "reconnecting" in runner.text()
    handled = runner.handled()
    assert len(handled) == len(set(handled)), f"a command was handled twice: {handled}"
    assert handled == sorted(handled)
    for command in commands:
        answers = replies(alice, room, command["id"])
        assert len(answers) == 1 and answers[0]["text"].startswith("🎲"), answers
    api.close()
