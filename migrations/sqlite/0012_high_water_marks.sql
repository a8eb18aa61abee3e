-- High-water marks: the highest value a setting has ever had on this store, by name, never
-- lowered. `token_max_ttl`: the longest room token lifetime any server (or `collab token
-- create`) has minted under; a room token revocation is kept that long past the revocation
-- (collab.meta.room_tokens), so a revocation outlives every token it can name, whatever
-- token_max_ttl a node runs with now or later.
CREATE TABLE high_water_marks (
    name TEXT PRIMARY KEY,
    value REAL NOT NULL
) WITHOUT ROWID;
