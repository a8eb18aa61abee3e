-- search_put with the time its write was known to be the table's (p_written: the entry's
-- written_at, collab.search.index): a room's drop refuses a write by that time, not by its
-- posting time, so a message of a room made again under a dropped id, read from the table
-- after the drop, is taken (collab.search.rebuild.refill_room). The 9-argument form of 0050
-- stays for nodes not upgraded yet (a rolling upgrade), now the same rules with p_written =
-- p_at.
CREATE FUNCTION search_put(
    p_kind text, p_room text, p_key text, p_text text, p_at double precision,
    p_version double precision, p_deleted boolean, p_author text, p_seq bigint,
    p_written double precision
) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    dropped_at double precision;
    row_id bigint;
    row_version double precision;
    new_id bigint;
BEGIN
    SELECT at INTO dropped_at FROM search_dropped_rooms WHERE room = p_room;
    IF dropped_at IS NOT NULL AND p_written <= dropped_at THEN
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

CREATE OR REPLACE FUNCTION search_put(
    p_kind text, p_room text, p_key text, p_text text, p_at double precision,
    p_version double precision, p_deleted boolean, p_author text, p_seq bigint
) RETURNS void LANGUAGE sql AS $$
    SELECT search_put(p_kind, p_room, p_key, p_text, p_at, p_version, p_deleted, p_author,
                      p_seq, p_at);
$$;
