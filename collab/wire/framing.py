"""TEMPORARY shim on branch r-sync only: replaced by the real module from r-wire at merge."""

from collab.protocol import *  # noqa: F403
from collab.protocol import decode_message as decode_message
