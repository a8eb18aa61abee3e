"""Mentions in a message's text: who ``@handle`` and ``@room`` name (docs/chat.md, "Text").

A mention is ``@`` and a handle (1 to 32 of ``a-z 0-9 . _ -``, starting with a letter or a
digit, any case), where the ``@`` does not follow a letter, digit or ``. _ + - @`` (so
``ann@example.com`` mentions nobody) and the handle is not followed by a letter, digit,
``_``, ``-`` or ``@``. Handles may contain dots, so ``@ann.`` at the end of a sentence names
``ann.`` if someone has that handle, else ``ann`` (``@room.`` is ``@room``). Nothing inside
code mentions anyone: a fenced block (three or more backticks, to the same fence or the end
of the text) or an inline span (a run of backticks to the next run of the same length).
``@room`` names every member of the room; ``@here``, ``@channel`` and ``@everyone`` are
reserved handles (nobody has them) and name nobody.

``parse_mentions`` only reads text; ``mentioned_users`` resolves what it found to the room's
members (a handle of someone outside the room names nobody), leaving the author out.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from collab.meta import MetaStore

ROOM = "room"
MAX_HANDLES = 100  # distinct handles resolved per message; @room reaches everyone anyway
_FENCE = re.compile(r"(`{3,}).*?(?:\1|\Z)", re.S)
_INLINE = re.compile(r"(?<!`)(`+)(?!`).+?(?<!`)\1(?!`)", re.S)
_MENTION = re.compile(r"(?<![\w.+@-])@([A-Za-z0-9][A-Za-z0-9._-]{0,31})(?![\w@-])")


@dataclass(frozen=True)
class Mentioned:
    """What a text mentions: ``room`` for ``@room``, and the handles it names, lower-cased,
    distinct, in order of appearance (at most ``MAX_HANDLES``)."""

    room: bool = False
    handles: tuple[str, ...] = ()

    def candidates(self, handle: str) -> tuple[str, ...]:
        """The handles a token may stand for, preferred first: itself, then without the
        punctuation that may end a sentence."""
        bare = handle.rstrip("._-")
        return (handle, bare) if bare and bare != handle else (handle,)


def without_code(text: str) -> str:
    """The text with its code (fenced blocks, inline spans) blanked out."""
    return _INLINE.sub(" ", _FENCE.sub(" ", text))


def parse_mentions(text: str) -> Mentioned:
    room = False
    handles: dict[str, None] = {}
    for match in _MENTION.finditer(without_code(text)):
        handle = match[1].lower()
        if handle.rstrip("._-") == ROOM:  # "@room." ends a sentence; nobody has "room."
            room = True
        elif len(handles) < MAX_HANDLES:
            handles.setdefault(handle)
    return Mentioned(room, tuple(handles))


async def mentioned_users(meta: MetaStore, room_id: str, author: str, text: str) -> tuple[str, ...]:
    """The ids of the room's members the text mentions, but the author: those named by
    handle first, in order, then (for ``@room``) every other member."""
    found = parse_mentions(text)
    if not found.room and not found.handles:
        return ()
    members = [member.user_id for member in await meta.list_members(room_id)]
    among = set(members)
    holders = await _holders(meta, {c for h in found.handles for c in found.candidates(h)})
    named: list[str] = []
    for handle in found.handles:
        for candidate in found.candidates(handle):
            user_id = holders.get(candidate)
            if user_id is not None and user_id in among:
                named.append(user_id)
                break
    everyone = members if found.room else []
    return tuple(user for user in dict.fromkeys([*named, *everyone]) if user != author)


async def _holders(meta: MetaStore, handles: Iterable[str]) -> dict[str, str]:
    """handle -> the id of the user who has it."""
    wanted = sorted(handles)
    users = await meta.get_users_by_handles(wanted) if wanted else {}
    return {handle: user.id for handle, user in users.items()}
