-- Issue 14: bots as room members, incoming webhooks, outgoing webhooks (a durable outbox).
--
-- A bot made through the API (POST /api/v1/rooms/{room}/bots) is a user of issuer
-- 'collab:bot' and a member of its room; this row says which room made it, so that room's
-- owners may remove it, mint its tokens and list it.
CREATE TABLE bots (
    user_id TEXT PRIMARY KEY,
    room_id TEXT NOT NULL,
    name TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE INDEX bots_by_room ON bots (room_id, created_at);

-- An incoming webhook: a URL whose secret lets an outside system post into a room's chat as
-- the hook's bot. Only the secret's SHA-256 digest is kept; a revoked hook answers 404.
CREATE TABLE incoming_hooks (
    id TEXT PRIMARY KEY,
    room_id TEXT NOT NULL,
    bot_id TEXT NOT NULL,
    name TEXT NOT NULL,
    digest TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at REAL NOT NULL,
    revoked_at REAL,
    last_used_at REAL
);
CREATE INDEX incoming_hooks_by_room ON incoming_hooks (room_id, created_at);

-- An outgoing webhook endpoint: where a room's events are delivered, signed with `secret`
-- (Standard Webhooks: the signer needs the secret itself, so it is stored, not a digest).
-- `failures` counts consecutive failed attempts, `failing_since` is the first of them: the
-- circuit breaker opens until `open_until`; a day of failures disables the endpoint.
CREATE TABLE webhook_endpoints (
    id TEXT PRIMARY KEY,
    room_id TEXT NOT NULL,
    url TEXT NOT NULL,
    events TEXT NOT NULL,  -- JSON list of event names
    secret TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at REAL NOT NULL,
    failures INTEGER NOT NULL DEFAULT 0,
    failing_since REAL,
    open_until REAL,
    disabled_at REAL,
    disabled_reason TEXT,
    deleted INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX webhook_endpoints_by_room ON webhook_endpoints (room_id, created_at);

-- The outbox: one row per (event, endpoint), written in the transaction that decides the
-- event happened, sent by whichever worker claims it (a lease: `claimed_until`), retried at
-- `due` until delivered or given up (`state`).
CREATE TABLE webhook_deliveries (
    id TEXT PRIMARY KEY,  -- the webhook-id header: the same on every attempt
    endpoint_id TEXT NOT NULL,
    room_id TEXT NOT NULL,
    event TEXT NOT NULL,
    payload TEXT NOT NULL,
    created_at REAL NOT NULL,
    window_start REAL NOT NULL,  -- retries give up a day after this (a redelivery renews it)
    due REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'failed')),
    claimed_by TEXT,
    claimed_until REAL,
    finished_at REAL
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (state, due);
CREATE INDEX webhook_deliveries_by_endpoint ON webhook_deliveries (endpoint_id, created_at);

-- Every attempt of every delivery: when, the answer's status (NULL: none), how long, why not.
CREATE TABLE webhook_attempts (
    delivery_id TEXT NOT NULL,
    n INTEGER NOT NULL,
    at REAL NOT NULL,
    status INTEGER,
    latency REAL NOT NULL,
    error TEXT,
    PRIMARY KEY (delivery_id, n)
);
