"""Access changes on open sockets: a member's new role takes effect at once.

Downgrade: later writes are refused, the socket stays open. Upgrade to a writer: the server
sends SyncStep1 so the client's earlier refused edits are pulled. Removal: closed 4403. A
socket that opted in to collab's own messages is also told its new role (message 103), so an
open tab turns its editor read-only, or its chat box off, at once instead of finding out when
an edit is refused.
"""

from __future__ import annotations

from collab.auth.policy import doc_access, effective_role
from collab.meta import Role
from collab.sync.livedoc import LiveDoc
from collab.sync.peer import Peer
from collab.wire import framing


def follow_role(live: LiveDoc, peer: Peer, member_role: Role | None) -> None:
    """Apply the peer's user's new room role (None: removed) to this one socket."""
    assert peer.principal is not None
    role = effective_role(peer.principal, member_role)
    peer.role = role
    if role is None:
        peer.close(4403, "removed from room")
        return
    can_write = doc_access(role, live.key.doc).can_write
    if can_write and peer.readonly:
        live.pull_refused_edits(peer)
    peer.readonly = not can_write
    if peer.opted_in:
        peer.send(framing.access_changed(role.name, can_write))
