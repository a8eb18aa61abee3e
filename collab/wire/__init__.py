"""TEMPORARY shim on branch r-sync only: replaced by the real package from r-wire at merge."""

from collab.protocol import encode_varuint
from collab.room import limits_from
from collab.yupdate import (
    AwarenessEntry,
    DocIndex,
    Limits,
    MalformedInput,
    UpdateInfo,
    encode_awareness,
    read_varuint,
    scan_awareness,
    scan_state_vector,
    scan_update,
)

__all__ = [
    "AwarenessEntry",
    "DocIndex",
    "Limits",
    "MalformedInput",
    "UpdateInfo",
    "encode_awareness",
    "encode_varuint",
    "limits_from",
    "read_varuint",
    "scan_awareness",
    "scan_state_vector",
    "scan_update",
]
