"""collab: a self-hosted collaborative workspace on Yjs documents."""

from __future__ import annotations

__version__ = "0.1.0"
