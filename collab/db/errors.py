"""The one error of the SQLite plumbing, shared by every store built on it.

``StoreError`` lives here, below both ``collab.store`` (documents) and ``collab.meta``
(everything else), because the pieces that raise it are shared: a closed database, a schema
with pending migrations or one newer than the code, an unusable store URL.
"""

from __future__ import annotations


class StoreError(Exception):
    """The store could not do what was asked (I/O, corruption, version mismatch)."""
