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

-- One versioned write (collab.search.index's rules, as SQLite's _put applies them), run by
-- the server so that a batch is one pipelined round trip per node, not four per entry. The
-- caller holds the index's write lock (collab.search.postgres.WRITE_LOCK).
CREATE FUNCTION search_put(
    p_kind text, p_room text, p_key text, p_text text, p_at double precision,
    p_version double precision, p_deleted boolean, p_author text, p_seq bigint
) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    dropped_at double precision;
    row_id bigint;
    row_version double precision;
    new_id bigint;
BEGIN
    SELECT at INTO dropped_at FROM search_dropped_rooms WHERE room = p_room;
    IF dropped_at IS NOT NULL AND p_at <= dropped_at THEN
        RETURN;  -- written before its room was dropped
    END IF;
    SELECT id, version INTO row_id, row_version FROM search_entries
        WHERE kind = p_kind AND room = p_room AND key = p_key;
    IF row_id IS NOT NULL AND p_version <= row_version THEN
        RETURN;  -- stale or repeated
    END IF;
    IF row_id IS NOT NULL AND p_kind = 'chat' THEN  -- a message keeps its place
        UPDATE search_entries SET at = p_at, version = p_version, deleted = p_deleted,
            author = p_author, seq = p_seq, text = p_text WHERE id = row_id;
        RETURN;
    END IF;
    IF row_id IS NOT NULL THEN  -- a doc moves to its latest read
        DELETE FROM search_entries WHERE id = row_id;
    END IF;
    new_id := greatest(1, trunc(p_at * 1000000)::bigint);  -- entry_id(at)
    LOOP
        INSERT INTO search_entries (id, kind, room, key, at, version, deleted, author, seq, text)
            VALUES (new_id, p_kind, p_room, p_key, p_at, p_version, p_deleted, p_author, p_seq,
                    p_text)
            ON CONFLICT (id) DO NOTHING;
        EXIT WHEN FOUND;
        new_id := new_id + 1;
    END LOOP;
END
$$;
