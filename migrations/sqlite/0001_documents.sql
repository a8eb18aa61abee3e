-- Documents: one row per (room, doc) with its generation and latest snapshot, and an
-- append-only log of the updates the server's Doc emitted after that snapshot.
CREATE TABLE docs (
    room TEXT NOT NULL,
    name TEXT NOT NULL,
    generation TEXT NOT NULL,
    created_at REAL NOT NULL,
    snapshot BLOB,
    snapshot_seq INTEGER NOT NULL DEFAULT 0,
    last_seq INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (room, name)
) WITHOUT ROWID;

CREATE TABLE doc_updates (
    room TEXT NOT NULL,
    name TEXT NOT NULL,
    seq INTEGER NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (room, name, seq)
) WITHOUT ROWID;
