-- Chat (SPEC §3): sessions private to whoever opened them (a user, or an
-- API key), their messages, and the rolling summary of older turns that
-- keeps a long conversation inside the model's context window.
CREATE TABLE chat_sessions (
    id               BLOB PRIMARY KEY,
    org_id           BLOB NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    owner_type       TEXT NOT NULL,
    owner_id         BLOB NOT NULL,
    title            TEXT NOT NULL,
    summary          TEXT,
    summary_through  BLOB,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL,
    deleted_at       TEXT
) STRICT;
CREATE INDEX chat_sessions_owner ON chat_sessions (org_id, owner_id, updated_at);

CREATE TABLE chat_messages (
    id            BLOB PRIMARY KEY,
    org_id        BLOB NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    session_id    BLOB NOT NULL REFERENCES chat_sessions (id) ON DELETE CASCADE,
    role          TEXT NOT NULL,
    content       TEXT NOT NULL,
    agent_id      BLOB,
    execution_id  BLOB,
    attachments   TEXT NOT NULL DEFAULT '[]',
    tokens_in     INTEGER NOT NULL DEFAULT 0,
    tokens_out    INTEGER NOT NULL DEFAULT 0,
    created_at    TEXT NOT NULL
) STRICT;
CREATE INDEX chat_messages_session ON chat_messages (org_id, session_id, id);
