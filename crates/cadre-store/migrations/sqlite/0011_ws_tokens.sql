-- Single-use, short-lived tokens a client trades its access token for to
-- open a WebSocket (a browser cannot set headers on one). Only the hash is
-- kept, as for password resets.
CREATE TABLE ws_tokens (
    token_hash  TEXT PRIMARY KEY,
    user_id     BLOB REFERENCES users (id) ON DELETE CASCADE,
    api_key_id  BLOB REFERENCES api_keys (id) ON DELETE CASCADE,
    expires_at  TEXT NOT NULL,
    used_at     TEXT,
    created_at  TEXT NOT NULL,
    CHECK ((user_id IS NULL) <> (api_key_id IS NULL))
) STRICT;
CREATE INDEX ws_tokens_expiry ON ws_tokens (expires_at);
