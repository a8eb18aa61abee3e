"""A startup failure an operator fixes, said in one log line instead of a traceback.

The app's startup (``collab.services.Services.open``) raises ``StoreError`` for a database it
must not or cannot open (pending migrations, a schema newer than the code, a PostgreSQL server
that does not answer) and ``OSError`` for a directory or file it cannot make or read (a
``files_dir`` that is a file, a data directory it may not write), and ``SecretKeyError`` for
a stored ``secret_key`` it cannot use (empty, too short). Starlette hands uvicorn the
whole traceback as the failure's text, and uvicorn logs it: a screenful of frames with the one
line that matters last. ``plain_startup_failures`` wraps the app for uvicorn so that such a
failure's text is ``collab cannot start: <the error's message>``; anything else (a bug) keeps
its traceback. Every other scope goes straight to the app.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from collab.auth.keys import SecretKeyError
from collab.db import StoreError

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[MutableMapping[str, Any], Receive, Send], Awaitable[None]]

# What startup raises for a reason outside the code: the message says what to fix.
OPERATOR_ERRORS = (StoreError, OSError, SecretKeyError)


def plain_startup_failures(app: App) -> App:
    """``app`` with a startup failure's text reduced to its message (see the module doc)."""

    async def wrapped(scope: MutableMapping[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await app(scope, receive, send)
            return

        async def send_plainly(message: Message) -> None:
            if message.get("type") == "lifespan.startup.failed":
                # Sent from the handler of the exception that failed startup (Starlette's
                # router formats it there), so it is the one being handled.
                failure = sys.exc_info()[1]
                if isinstance(failure, OPERATOR_ERRORS):
                    text = " ".join(str(failure).split())
                    message = {**message, "message": f"collab cannot start: {text}"}
            await send(message)

        await app(scope, receive, send_plainly)

    return wrapped
