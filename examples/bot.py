"""An example collab bot: it answers ``/roll`` and summarises a doc on request.

    COLLAB_TOKEN=<the bot's token> python examples/bot.py --url http://127.0.0.1:8000 --room team

In the room's chat:

- ``/roll`` or ``/roll 3d6`` answers with the dice, in the command's thread;
- ``/summary notes`` reads the doc ``notes`` (its Y.Text ``text``, what y-websocket editors
  such as CodeMirror bindings use), answers with a summary, and appends the summary to the doc
  itself, where everyone editing it sees it appear.

Every answer carries ``client_id = "answer-<command id>"``: if the bot dies between answering
and noting the answer, a restarted bot answers again and the server keeps the first. With
``--state FILE`` it remembers the last message it handled (``room.cursor``) and resumes after
it; without, it starts with the messages posted after it starts. The client reconnects by
itself through server restarts; every handled command prints ``handled <seq> <text>``.
"""

from __future__ import annotations

import argparse
import collections
import logging
import os
import random
import re
import sys
from pathlib import Path

import anyio
from pycrdt import Text

from collab.client import Client, Message, Room

ROLL = re.compile(r"/roll(?:\s+(\d{1,2})d(\d{1,4}))?\s*")
SUMMARY = re.compile(r"/summary\s+([A-Za-z0-9][A-Za-z0-9._:-]{0,127})\s*")
WORD = re.compile(r"[^\W\d_]{4,}")


def roll(count: int, sides: int) -> str:
    dice = [random.randint(1, sides) for _ in range(count)]
    shown = " + ".join(str(d) for d in dice)
    return f"🎲 {count}d{sides}: {shown} = {sum(dice)}" if count > 1 else f"🎲 d{sides}: {shown}"


def summarise(text: str) -> str:
    """A short, deterministic summary: size, first line, most frequent words."""
    lines = [line for line in text.splitlines() if line.strip()]
    words = text.split()
    common = collections.Counter(w.lower() for w in WORD.findall(text)).most_common(3)
    first = (lines[0][:80] + ("…" if len(lines[0]) > 80 else "")) if lines else "(empty)"
    keywords = ", ".join(word for word, _ in common) or "none"
    return f"{len(words)} words, {len(lines)} lines; starts with “{first}”; keywords: {keywords}"


async def answer(room: Room, message: Message) -> None:
    text = message.text.strip()
    reply: str | None = None
    if (found := ROLL.fullmatch(text)) is not None:
        count, sides = int(found[1] or 1), int(found[2] or 6)
        reply = roll(count, sides) if 1 <= count and 2 <= sides else "Try /roll 2d6."
    elif (found := SUMMARY.fullmatch(text)) is not None:
        reply = await summarise_doc(room, found[1])
    if reply is not None:
        await room.post(
            reply, thread=message.thread or message.id, client_id=f"answer-{message.id}"
        )


async def summarise_doc(room: Room, name: str) -> str:
    async with room.doc(name) as synced:
        body = synced.doc.get("text", type=Text)
        summary = f"Summary of {name}: {summarise(str(body))}"
        body.insert(len(body), ("\n" if str(body) else "") + summary)
        await synced.saved()  # on the server's disk before we say so
    return summary


async def run(url: str, room_id: str, token: str, state_file: Path | None) -> None:
    state = anyio.Path(state_file) if state_file is not None else None
    after = int(await state.read_text()) if state is not None and await state.exists() else None
    async with Client(url, token) as client:
        room = client.room(room_id)
        if after is None:
            after = await room.chat.last_seq()  # from now on (before saying we listen)
        print(f"listening in {room_id} as {client.me.get('handle')}", flush=True)
        async for message in room.messages(after_seq=after):
            await answer(room, message)
            print(f"handled {message.seq} {message.text}", flush=True)
            if state is not None:
                await state.write_text(str(message.seq))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000", help="the collab server")
    parser.add_argument("--room", required=True, help="the room to listen in")
    parser.add_argument("--state", type=Path, help="a file keeping the last handled seq")
    args = parser.parse_args()
    token = os.environ.get("COLLAB_TOKEN")
    if not token:
        sys.exit("set COLLAB_TOKEN to the bot's API token (or a room token)")
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    logging.getLogger("httpx2").setLevel(logging.WARNING)  # a line per request otherwise
    anyio.run(run, args.url, args.room, token, args.state)


if __name__ == "__main__":
    main()
