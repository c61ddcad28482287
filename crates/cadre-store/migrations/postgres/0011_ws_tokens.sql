-- Single-use, short-lived tokens a client trades its access token for to
-- open a WebSocket (a browser cannot set headers on one). Only the hash is
-- kept, as for password resets.
CREATE TABLE ws_tokens (
    token_hash  TEXT PRIMARY KEY,
    user_id     UUID REFERENCES users (id) ON DELETE CASCADE,
    api_key_id  UUID REFERENCES api_keys (id) ON DELETE CASCADE,
    expires_at  TIMESTAMPTZ NOT NULL,
    used_at     TIMESTAMPTZ,
    created_at  TIMESTAMPTZ NOT NULL,
    CHECK ((user_id IS NULL) <> (api_key_id IS NULL))
);
CREATE INDEX ws_tokens_expiry ON ws_tokens (expires_at);
