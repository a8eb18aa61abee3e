-- Document metadata (issue 10): a title that can change (the name stays the URL) and the kind
-- of editor that binds the doc (`text`: CodeMirror, `rich`: Tiptap; one binding per doc, so
-- the kind is set once). A row may exist before the doc's first update is stored (a doc just
-- created in the workspace); it is deleted with its doc and with its room.
CREATE TABLE doc_meta (
    room_id TEXT NOT NULL,
    name TEXT NOT NULL,
    title TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('text', 'rich')),
    created_by TEXT NOT NULL,
    created_at REAL NOT NULL,
    updated_by TEXT NOT NULL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (room_id, name)
) WITHOUT ROWID;
