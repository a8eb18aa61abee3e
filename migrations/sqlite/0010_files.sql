-- Files (issue 12): a room's references to uploaded bytes (collab.meta.files).
--
-- The bytes live outside the database in a content-addressed blob store (collab.store.blobs:
-- `files/ab/cdef...`, named by their SHA-256), shared by every room that holds the same
-- content. A row here is one upload into one room: a file is readable in a room only through a
-- row of that room. A blob no row references (of a room that still exists) may be removed by
-- the collector, never within an hour of its last upload. `size` is counted against the
-- room's `max_room_files_bytes` whether or not the bytes were already stored.
CREATE TABLE files (
    id TEXT PRIMARY KEY,
    room_id TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    size INTEGER NOT NULL,
    mime TEXT NOT NULL,
    name TEXT NOT NULL,  -- the client's name, sanitised: for display and downloads only
    uploader TEXT NOT NULL,  -- user id
    created_at REAL NOT NULL
);
CREATE INDEX files_by_room ON files (room_id, created_at);
CREATE INDEX files_by_sha256 ON files (sha256);
