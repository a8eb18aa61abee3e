-- Issue 8 (access): invites that are listed, revoked and voided; pending invitations bound to
-- an email (``POST .../members`` by email, ``GET /api/v1/me/invites``); audit rows that belong
-- to one creation of a room id; indexes the purge needs.

-- An invite may be bound to an email address (formerly a cache entry keyed by the code's
-- digest); it ends when used, revoked by an owner, voided (its creator was demoted or
-- removed), declined by its invitee, or replaced by a newer invitation for the same email.
ALTER TABLE invites ADD COLUMN email TEXT COLLATE NOCASE;
ALTER TABLE invites ADD COLUMN created_at REAL NOT NULL DEFAULT 0;  -- 0: made before 0003
ALTER TABLE invites ADD COLUMN closed_at REAL;
ALTER TABLE invites ADD COLUMN closed_reason TEXT
    CHECK (closed_reason IN ('revoked', 'voided', 'declined', 'replaced'));
UPDATE invites SET email = (
    SELECT value FROM cache WHERE cache.key = 'invite-email:' || invites.digest
);
DELETE FROM cache WHERE key LIKE 'invite-email:%';
CREATE INDEX invites_by_email ON invites (email) WHERE email IS NOT NULL;
CREATE INDEX invites_by_creator ON invites (room_id, created_by);
CREATE INDEX invites_by_expiry ON invites (expires_at);

-- A room sees only audit rows newer than its own creation: ``audit_floor`` is the highest
-- audit id that existed when the room was created (ids only grow: AUTOINCREMENT). Rooms made
-- before 0003 start after their id's last deletion, the one event that marks an earlier room.
ALTER TABLE rooms ADD COLUMN audit_floor INTEGER NOT NULL DEFAULT 0;
UPDATE rooms SET audit_floor = coalesce(
    (SELECT max(id) FROM audit WHERE audit.room_id = rooms.id AND audit.action = 'room.delete'),
    0
);

-- The purge deletes audit rows by age.
CREATE INDEX audit_by_time ON audit (at);
