-- The search index (collab.search.postgres): in the store's own database, so every node
-- writes and asks one index. search_entries has the columns of SQLite's index (entries in
-- <database>.search.db); a GIN trigram index (pg_trgm, a trusted extension: a database owner
-- may create it) answers ILIKE '%term%' for terms of three characters or more.
-- Numbered 0050 so that the meta store's migrations (0002..) never collide with it.
CREATE EXTENSION IF NOT EXISTS pg_trgm;

CREATE TABLE search_entries (
    id bigint PRIMARY KEY,
    kind text NOT NULL,
    room text NOT NULL,
    key text NOT NULL,
    at double precision NOT NULL,
    version double precision NOT NULL,
    deleted boolean NOT NULL DEFAULT false,
    author text,
    seq bigint,
    text text NOT NULL,
    UNIQUE (kind, room, key)
);
CREATE INDEX search_entries_by_room ON search_entries (room, id);
CREATE INDEX search_entries_trgm ON search_entries USING gin (text gin_trgm_ops);

-- A dropped room refuses writes older than its drop (collab.search.index).
CREATE TABLE search_dropped_rooms (room text PRIMARY KEY, at double precision NOT NULL);
-- Docs a node closing cleanly had not re-indexed yet: the next node to open takes them.
CREATE TABLE search_pending_docs (room text NOT NULL, doc text NOT NULL, PRIMARY KEY (room, doc));
-- 'complete': a full rebuild finished since the last one started.
CREATE TABLE search_state (key text PRIMARY KEY, value text NOT NULL);
-- One row per process writing the index (a server, `collab search reindex`), holding the
-- session advisory lock `lock_key` while it lives: a row whose lock is free is a process that
-- ended without closing (its queued writes may be lost: the index is rebuilt).
CREATE TABLE search_writers (lock_key bigint PRIMARY KEY, since double precision NOT NULL);
