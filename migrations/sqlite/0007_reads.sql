-- Chat (issue 9): read markers and the mention inbox (collab.meta.reads, collab.meta.inbox).
--
-- A read marker is one row per user per room: `up_to` is the highest seq the user has read
-- (forward only: a lower value never replaces a higher one). Public markers are mirrored into
-- the room's `chat` doc (`reads`); a user's `private_read_markers` keeps theirs out of it.
CREATE TABLE read_markers (
    room_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    up_to INTEGER NOT NULL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (room_id, user_id)
) WITHOUT ROWID;

-- One entry per mentioned user per message (a mention an edit adds notifies once too). `seq`
-- is the message's, so moving the room's read marker past it marks the entry read. Ids only
-- grow (AUTOINCREMENT): newest first is id order, and a cursor stays valid. What a user sees is
-- filtered when read: their current memberships, messages not deleted (a deletion also
-- deletes the message's entries).
CREATE TABLE inbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id TEXT NOT NULL,
    room_id TEXT NOT NULL,
    message_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    created_at REAL NOT NULL,
    read INTEGER NOT NULL DEFAULT 0,
    UNIQUE (user_id, message_id)
);
CREATE INDEX inbox_by_user ON inbox (user_id, id);
CREATE INDEX inbox_unread ON inbox (user_id, room_id, seq) WHERE NOT read;
CREATE INDEX inbox_by_room ON inbox (room_id, message_id);
