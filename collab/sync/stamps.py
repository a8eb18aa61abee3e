"""The awareness fields the server owns (docs/awareness.md): ``user`` and ``typing``.

- ``user`` is stamped on every state a peer sets, on every doc, from the socket's authenticated
  principal: ``{"id", "name", "handle" (once principals carry one), "color"}``. The client's own
  ``user.color`` is kept when it is a ``#rrggbb`` hex colour, else a colour derived from the user
  id is used; everything else the client put in ``user`` is replaced, so no client can show
  itself as another user.
- ``typing`` (``true``, or a thread id: typing a reply in that thread) is the server's to end:
  a state that says typing and is not refreshed (sent again with a new clock) within the typing
  timeout gets ``"typing": false`` from the server (``Presence.expire_typing``).

States reach this module already scanned (``collab.wire.scan_awareness``: JSON objects within
the size and depth caps), so parsing them again cannot fail on hostile input. ``Presence`` calls
``stamp`` only when a client's state changed, never for a mere renewal (y-websocket resends an
unchanged state every 15 s).
"""

from __future__ import annotations

import colorsys
import functools
import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from collab.auth.principal import Principal
from collab.wire import canonical_json

__all__ = ["Stamped", "clear_typing", "derived_color", "is_typing", "stamp", "user_field"]

# What editor bindings expect: y-codemirror appends an alpha byte to it for selections.
_HEX_COLOR = re.compile(r"#[0-9a-fA-F]{6}")


@dataclass(frozen=True, slots=True)
class Stamped:
    """A client's state as the server relays it, and whether it says the client is typing."""

    state: bytes
    typing: bool


def stamp(state: bytes, principal: Principal | None) -> Stamped:
    """``state`` (a scanned JSON object) with ``user`` set from ``principal``.

    Without a principal (in-process tests only: every socket has one) the state is kept as is.
    """
    value: dict[str, Any] = json.loads(state)
    typing = is_typing(value.get("typing"))
    if principal is None:
        return Stamped(state, typing)
    value["user"] = user_field(principal, value.get("user"))
    return Stamped(canonical_json(value), typing)


def user_field(principal: Principal, sent: object) -> dict[str, str]:
    """The ``user`` field the server stamps; ``sent`` is what the client put there."""
    user = {"id": principal.user_id, "name": principal.name}
    # Principals gain a handle with issue 9's handles; until then the field is left out.
    handle = getattr(principal, "handle", None)
    if isinstance(handle, str) and handle:
        user["handle"] = handle
    color = sent.get("color") if isinstance(sent, dict) else None
    if isinstance(color, str) and _HEX_COLOR.fullmatch(color):
        user["color"] = color
    else:
        user["color"] = derived_color(principal.user_id)
    return user


@functools.lru_cache(maxsize=4096)
def derived_color(user_id: str) -> str:
    """A stable, readable ``#rrggbb`` for a user: a hue from a hash of the id."""
    digest = hashlib.sha256(user_id.encode("utf-8")).digest()
    hue = int.from_bytes(digest[:2], "big") % 360
    red, green, blue = colorsys.hls_to_rgb(hue / 360, 0.45, 0.65)
    return "#{:02x}{:02x}{:02x}".format(*(round(c * 255) for c in (red, green, blue)))


def is_typing(value: object) -> bool:
    """``true`` or a non-empty string (a thread id); any other value is not typing."""
    return value is True or (isinstance(value, str) and value != "")


def clear_typing(state: bytes) -> bytes:
    """``state`` with ``"typing": false``: what the server sends when typing went stale."""
    value: dict[str, Any] = json.loads(state)
    value["typing"] = False
    return canonical_json(value)
