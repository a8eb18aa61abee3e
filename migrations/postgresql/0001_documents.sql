-- Documents: one row per (room, doc) with its generation and latest snapshot, and an
-- append-only log of the updates a node's Doc emitted after that snapshot. The same shape as
-- SQLite's 0001. docs.last_seq is the doc's sequence head: an append increments it under the
-- row's lock in the committing transaction, so every doc's seqs are gapless across nodes.
CREATE TABLE docs (
    room text NOT NULL,
    name text NOT NULL,
    generation text NOT NULL,
    created_at double precision NOT NULL,
    snapshot bytea,
    snapshot_seq bigint NOT NULL DEFAULT 0,
    last_seq bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (room, name)
);

CREATE TABLE doc_updates (
    room text NOT NULL,
    name text NOT NULL,
    seq bigint NOT NULL,
    data bytea NOT NULL,
    PRIMARY KEY (room, name, seq)
);
