-- Everything persistent that is not a Yjs document (collab.meta). Secrets are never stored:
-- sessions, invites, API tokens and tickets keep the SHA-256 digest of theirs.
-- No foreign keys: the store deletes a room's members, invites and tickets in the same
-- transaction as the room (collab/meta/sqlite.py), so nothing depends on PRAGMA foreign_keys,
-- and members may name principals without a users row (the dev user).
-- Times are Unix seconds (REAL); booleans are 0/1; roles are their names ('owner', ...).

CREATE TABLE users (
    id TEXT PRIMARY KEY,
    issuer TEXT NOT NULL,
    subject TEXT NOT NULL,
    name TEXT NOT NULL DEFAULT '',
    email TEXT COLLATE NOCASE,
    email_verified INTEGER NOT NULL DEFAULT 0,
    picture TEXT,
    disabled INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    UNIQUE (issuer, subject)
);
CREATE INDEX users_verified_email ON users (email) WHERE email_verified;

CREATE TABLE sessions (
    id TEXT PRIMARY KEY,  -- digest of the cookie value
    user_id TEXT NOT NULL,
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    revoked INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX sessions_by_user ON sessions (user_id);
CREATE INDEX sessions_by_expiry ON sessions (expires_at);

CREATE TABLE rooms (
    id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at REAL NOT NULL,
    gc INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX rooms_by_creator ON rooms (created_by);

CREATE TABLE members (
    room_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('viewer', 'commenter', 'editor', 'owner')),
    added_at REAL NOT NULL,
    PRIMARY KEY (room_id, user_id)
) WITHOUT ROWID;
CREATE INDEX members_by_user ON members (user_id);

CREATE TABLE invites (
    id TEXT PRIMARY KEY,
    digest TEXT NOT NULL UNIQUE,
    room_id TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('viewer', 'commenter', 'editor', 'owner')),
    created_by TEXT NOT NULL,
    expires_at REAL NOT NULL,
    used_by TEXT,
    used_at REAL
);
CREATE INDEX invites_by_room ON invites (room_id);

CREATE TABLE api_tokens (
    id TEXT PRIMARY KEY,
    digest TEXT NOT NULL UNIQUE,
    user_id TEXT NOT NULL,
    name TEXT NOT NULL,
    created_at REAL NOT NULL,
    revoked INTEGER NOT NULL DEFAULT 0,
    last_used_at REAL
);
CREATE INDEX api_tokens_by_user ON api_tokens (user_id);

CREATE TABLE tickets (
    digest TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    room_id TEXT NOT NULL,
    doc TEXT,
    role_ceiling TEXT CHECK (role_ceiling IN ('viewer', 'commenter', 'editor', 'owner')),
    expires_at REAL NOT NULL,
    used INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX tickets_by_room ON tickets (room_id);
CREATE INDEX tickets_by_expiry ON tickets (expires_at);

CREATE TABLE cache (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    expires_at REAL NOT NULL
);
CREATE INDEX cache_by_expiry ON cache (expires_at);

CREATE TABLE audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at REAL NOT NULL,
    action TEXT NOT NULL,
    actor TEXT,
    room_id TEXT,
    target TEXT,
    detail TEXT NOT NULL DEFAULT '{}',  -- JSON object
    ip TEXT
);
CREATE INDEX audit_by_room ON audit (room_id, id);
CREATE INDEX audit_by_actor ON audit (actor, id);
