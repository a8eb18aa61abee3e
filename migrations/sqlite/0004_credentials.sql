-- Credentials that end before their time (issue 8, item 2).
--
-- Room tokens are signed JWTs, valid until they expire; an owner may revoke one by its id
-- (jti) for its room. A row lives until `expires_at`, past which no token it names can still
-- be valid (the revocation time plus the longest token lifetime then configured).
CREATE TABLE revoked_room_tokens (
    room_id TEXT NOT NULL,
    jti TEXT NOT NULL,
    revoked_by TEXT NOT NULL,
    revoked_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    PRIMARY KEY (room_id, jti)
);  -- a rowid table: the purge deletes expired rows in batches by rowid
CREATE INDEX revoked_room_tokens_by_expiry ON revoked_room_tokens (expires_at);

-- A ticket only bounds its handshake: the socket it opens lives on the session or personal API
-- token that minted it (NULL: minted by the dev token), and a ticket whose minter has ended
-- since is refused.
ALTER TABLE tickets ADD COLUMN session_id TEXT;
ALTER TABLE tickets ADD COLUMN api_token_id TEXT;
