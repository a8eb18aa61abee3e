"""TEMPORARY shim on branch r-sync only: replaced by the real package from r-wire at merge."""

from collab.nesting import IndexDelta
from collab.protocol import encode_varuint
from collab.settings import Settings
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


def limits_from(settings: Settings) -> Limits:
    return Limits(max_any_depth=settings.max_any_depth, max_type_depth=settings.max_type_depth)


__all__ = [
    "AwarenessEntry",
    "DocIndex",
    "IndexDelta",
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
