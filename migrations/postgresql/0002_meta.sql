-- Everything persistent that is not a Yjs document (collab.meta), as SQLite's 0002-0011 leave
-- it, in one step: the same tables, columns and meanings (read those files for what each row
-- is), so one set of queries (collab/meta/sql/) runs on both. The differences:
--   times are double precision (SQLite REAL), booleans are boolean (SQLite 0/1), counters and
--   ids that only grow are bigint identities (SQLite AUTOINCREMENT);
--   SQLite's COLLATE NOCASE (ASCII case folding) on emails is collab_ascii_fold() here, in the
--   queries and in the indexes; handles are stored lower-case, which a CHECK holds;
--   no foreign keys, as in SQLite: a room's rows are deleted in the room's own transaction.
-- Several nodes write at once: the queries run in SERIALIZABLE transactions (retried), and
-- the unique keys below are the last word on what may exist twice.

-- What SQLite's NOCASE does: fold A-Z only, whatever the database's locale.
CREATE FUNCTION collab_ascii_fold(value text) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN translate(value, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz');

CREATE TABLE users (
    id text PRIMARY KEY,
    issuer text NOT NULL,
    subject text NOT NULL,
    name text NOT NULL DEFAULT '',
    email text,
    email_verified boolean NOT NULL DEFAULT FALSE,
    picture text,
    disabled boolean NOT NULL DEFAULT FALSE,
    created_at double precision NOT NULL,
    handle text UNIQUE CHECK (handle = collab_ascii_fold(handle)),
    private_read_markers boolean NOT NULL DEFAULT FALSE,
    UNIQUE (issuer, subject)
);
CREATE INDEX users_verified_email ON users (collab_ascii_fold(email)) WHERE email_verified;

CREATE TABLE sessions (
    id text PRIMARY KEY,  -- digest of the cookie value
    user_id text NOT NULL,
    created_at double precision NOT NULL,
    expires_at double precision NOT NULL,
    revoked boolean NOT NULL DEFAULT FALSE
);
CREATE INDEX sessions_by_user ON sessions (user_id);
CREATE INDEX sessions_by_expiry ON sessions (expires_at);

CREATE TABLE rooms (
    id text PRIMARY KEY,
    title text NOT NULL,
    created_by text NOT NULL,
    created_at double precision NOT NULL,
    gc boolean NOT NULL DEFAULT TRUE,
    audit_floor bigint NOT NULL DEFAULT 0,
    kind text NOT NULL DEFAULT 'room' CHECK (kind IN ('room', 'dm')),
    dm_key text UNIQUE
);
CREATE INDEX rooms_by_creator ON rooms (created_by);

CREATE TABLE members (
    room_id text NOT NULL,
    user_id text NOT NULL,
    role text NOT NULL CHECK (role IN ('viewer', 'commenter', 'editor', 'owner')),
    added_at double precision NOT NULL,
    PRIMARY KEY (room_id, user_id)
);
CREATE INDEX members_by_user ON members (user_id);

CREATE TABLE invites (
    id text PRIMARY KEY,
    digest text NOT NULL UNIQUE,
    room_id text NOT NULL,
    role text NOT NULL CHECK (role IN ('viewer', 'commenter', 'editor', 'owner')),
    created_by text NOT NULL,
    expires_at double precision NOT NULL,
    used_by text,
    used_at double precision,
    email text,
    created_at double precision NOT NULL DEFAULT 0,
    closed_at double precision,
    closed_reason text CHECK (closed_reason IN ('revoked', 'voided', 'declined', 'replaced'))
);
CREATE INDEX invites_by_room ON invites (room_id);
CREATE INDEX invites_by_email ON invites (collab_ascii_fold(email)) WHERE email IS NOT NULL;
CREATE INDEX invites_by_creator ON invites (room_id, created_by);
CREATE INDEX invites_by_expiry ON invites (expires_at);

CREATE TABLE api_tokens (
    id text PRIMARY KEY,
    digest text NOT NULL UNIQUE,
    user_id text NOT NULL,
    name text NOT NULL,
    created_at double precision NOT NULL,
    revoked boolean NOT NULL DEFAULT FALSE,
    last_used_at double precision
);
CREATE INDEX api_tokens_by_user ON api_tokens (user_id);

CREATE TABLE tickets (
    digest text PRIMARY KEY,
    user_id text NOT NULL,
    room_id text NOT NULL,
    doc text,
    role_ceiling text CHECK (role_ceiling IN ('viewer', 'commenter', 'editor', 'owner')),
    expires_at double precision NOT NULL,
    used boolean NOT NULL DEFAULT FALSE,
    session_id text,
    api_token_id text
);
CREATE INDEX tickets_by_room ON tickets (room_id);
CREATE INDEX tickets_by_expiry ON tickets (expires_at);

CREATE TABLE cache (
    key text PRIMARY KEY,
    value text NOT NULL,
    expires_at double precision NOT NULL
);
CREATE INDEX cache_by_expiry ON cache (expires_at);

CREATE TABLE audit (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at double precision NOT NULL,
    action text NOT NULL,
    actor text,
    room_id text,
    target text,
    detail text NOT NULL DEFAULT '{}',  -- JSON object
    ip text
);
CREATE INDEX audit_by_room ON audit (room_id, id);
CREATE INDEX audit_by_actor ON audit (actor, id);
CREATE INDEX audit_by_time ON audit (at);

CREATE TABLE revoked_room_tokens (
    room_id text NOT NULL,
    jti text NOT NULL,
    revoked_by text NOT NULL,
    revoked_at double precision NOT NULL,
    expires_at double precision NOT NULL,
    PRIMARY KEY (room_id, jti)
);
CREATE INDEX revoked_room_tokens_by_expiry ON revoked_room_tokens (expires_at);

CREATE TABLE messages (
    room_id text NOT NULL,
    seq bigint NOT NULL,
    id text NOT NULL UNIQUE,
    author text NOT NULL,
    author_name text NOT NULL DEFAULT '',
    author_handle text,
    client_id text NOT NULL,
    text text NOT NULL,
    created_at double precision NOT NULL,
    thread text,
    edited_at double precision,
    deleted boolean NOT NULL DEFAULT FALSE,
    reactions text NOT NULL DEFAULT '{}',
    mentions text NOT NULL DEFAULT '[]',
    attachments text NOT NULL DEFAULT '[]',
    reply_count integer NOT NULL DEFAULT 0,
    last_reply_at double precision,
    archived boolean NOT NULL DEFAULT FALSE,
    PRIMARY KEY (room_id, seq),
    UNIQUE (room_id, author, client_id)
);
CREATE INDEX messages_by_thread ON messages (room_id, thread, seq) WHERE thread IS NOT NULL;

CREATE TABLE read_markers (
    room_id text NOT NULL,
    user_id text NOT NULL,
    up_to bigint NOT NULL,
    updated_at double precision NOT NULL,
    PRIMARY KEY (room_id, user_id)
);

CREATE TABLE inbox (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id text NOT NULL,
    room_id text NOT NULL,
    message_id text NOT NULL,
    seq bigint NOT NULL,
    created_at double precision NOT NULL,
    read boolean NOT NULL DEFAULT FALSE,
    UNIQUE (user_id, message_id)
);
CREATE INDEX inbox_by_user ON inbox (user_id, id);
CREATE INDEX inbox_unread ON inbox (user_id, room_id, seq) WHERE NOT read;
CREATE INDEX inbox_by_room ON inbox (room_id, message_id);

CREATE TABLE doc_meta (
    room_id text NOT NULL,
    name text NOT NULL,
    title text NOT NULL,
    kind text NOT NULL CHECK (kind IN ('text', 'rich')),
    created_by text NOT NULL,
    created_at double precision NOT NULL,
    updated_by text NOT NULL,
    updated_at double precision NOT NULL,
    PRIMARY KEY (room_id, name)
);

CREATE TABLE files (
    id text PRIMARY KEY,
    room_id text NOT NULL,
    sha256 text NOT NULL,
    size bigint NOT NULL,
    mime text NOT NULL,
    name text NOT NULL,
    uploader text NOT NULL,
    created_at double precision NOT NULL
);
CREATE INDEX files_by_room ON files (room_id, created_at);
CREATE INDEX files_by_sha256 ON files (sha256);

CREATE TABLE bots (
    user_id text PRIMARY KEY,
    room_id text NOT NULL,
    name text NOT NULL,
    created_by text NOT NULL,
    created_at double precision NOT NULL
);
CREATE INDEX bots_by_room ON bots (room_id, created_at);

CREATE TABLE incoming_hooks (
    id text PRIMARY KEY,
    room_id text NOT NULL,
    bot_id text NOT NULL,
    name text NOT NULL,
    digest text NOT NULL,
    created_by text NOT NULL,
    created_at double precision NOT NULL,
    revoked_at double precision,
    last_used_at double precision
);
CREATE INDEX incoming_hooks_by_room ON incoming_hooks (room_id, created_at);

CREATE TABLE webhook_endpoints (
    id text PRIMARY KEY,
    room_id text NOT NULL,
    url text NOT NULL,
    events text NOT NULL,  -- JSON list of event names
    secret text NOT NULL,
    created_by text NOT NULL,
    created_at double precision NOT NULL,
    failures integer NOT NULL DEFAULT 0,
    failing_since double precision,
    open_until double precision,
    disabled_at double precision,
    disabled_reason text,
    deleted boolean NOT NULL DEFAULT FALSE
);
CREATE INDEX webhook_endpoints_by_room ON webhook_endpoints (room_id, created_at);

-- The outbox: a node claims a delivery by a lease (`claimed_until`) in a transaction that
-- locks the rows it claims and skips those another node holds (FOR UPDATE SKIP LOCKED).
CREATE TABLE webhook_deliveries (
    id text PRIMARY KEY,
    endpoint_id text NOT NULL,
    room_id text NOT NULL,
    event text NOT NULL,
    payload text NOT NULL,
    created_at double precision NOT NULL,
    window_start double precision NOT NULL,
    due double precision NOT NULL,
    attempts integer NOT NULL DEFAULT 0,
    state text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'failed')),
    claimed_by text,
    claimed_until double precision,
    finished_at double precision
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (state, due);
CREATE INDEX webhook_deliveries_by_endpoint ON webhook_deliveries (endpoint_id, created_at);

CREATE TABLE webhook_attempts (
    delivery_id text NOT NULL,
    n integer NOT NULL,
    at double precision NOT NULL,
    status integer,
    latency double precision NOT NULL,
    error text,
    PRIMARY KEY (delivery_id, n)
);
