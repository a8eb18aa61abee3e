-- Chat (issue 9): every message of every room, live or archived (collab.meta.messages).
--
-- The row is the message's record of truth; the room's `chat` Yjs doc shows the latest
-- `chat_live_messages` of them (collab.chat). `seq` is per room, gapless, from 1, and is the
-- display order. A post is idempotent by (room_id, author, client_id) for as long as the row
-- exists: rows are never deleted while their room exists (a deleted message is a tombstone:
-- text, reactions and mentions emptied, `deleted` = 1). JSON columns hold what a message lists.
CREATE TABLE messages (
    room_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    id TEXT NOT NULL UNIQUE,
    author TEXT NOT NULL,
    author_name TEXT NOT NULL DEFAULT '',
    author_handle TEXT,
    client_id TEXT NOT NULL,
    text TEXT NOT NULL,
    created_at REAL NOT NULL,
    thread TEXT,  -- the parent message's id: a reply
    edited_at REAL,
    deleted INTEGER NOT NULL DEFAULT 0,
    reactions TEXT NOT NULL DEFAULT '{}',  -- {"emoji": ["user id", ...]}, in reaction order
    mentions TEXT NOT NULL DEFAULT '[]',  -- ["user id", ...]
    attachments TEXT NOT NULL DEFAULT '[]',
    reply_count INTEGER NOT NULL DEFAULT 0,
    last_reply_at REAL,
    archived INTEGER NOT NULL DEFAULT 0,  -- 1: no longer in the live `chat` doc
    PRIMARY KEY (room_id, seq),
    UNIQUE (room_id, author, client_id)
);
CREATE INDEX messages_by_thread ON messages (room_id, thread, seq) WHERE thread IS NOT NULL;
