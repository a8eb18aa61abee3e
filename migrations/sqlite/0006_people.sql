-- Issue 9 (chat), people: handles, a per-user setting, direct messages.
--
-- Every user gets a unique handle for mentions (collab.meta.handles): stored lower-case, unique
-- whatever its case (COLLATE NOCASE, and the index follows the column's collation). Rows made
-- before 0006 are given theirs when the store is opened (SQLiteUsers.assign_missing_handles):
-- SQL alone cannot normalize names (accents, punctuation) nor number the clashes; until then
-- the column is NULL, which the unique index allows any number of times.
ALTER TABLE users ADD COLUMN handle TEXT COLLATE NOCASE;
CREATE UNIQUE INDEX users_by_handle ON users (handle);
-- Read markers hidden from the other members of a room (1), as Matrix's private receipts.
ALTER TABLE users ADD COLUMN private_read_markers INTEGER NOT NULL DEFAULT 0;

-- A direct message is a room of kind 'dm' whose `dm_key` is its two user ids, sorted and joined
-- by a space: unique, so one pair has one DM, however many open it at once.
ALTER TABLE rooms ADD COLUMN kind TEXT NOT NULL DEFAULT 'room' CHECK (kind IN ('room', 'dm'));
ALTER TABLE rooms ADD COLUMN dm_key TEXT;
CREATE UNIQUE INDEX rooms_by_dm_key ON rooms (dm_key) WHERE dm_key IS NOT NULL;
