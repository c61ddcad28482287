-- Chat (SPEC §3): sessions private to whoever opened them (a user, or an
-- API key), their messages, and the rolling summary of older turns that
-- keeps a long conversation inside the model's context window.
CREATE TABLE chat_sessions (
    id               UUID PRIMARY KEY,
    org_id           UUID NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    owner_type       TEXT NOT NULL,
    owner_id         UUID NOT NULL,
    title            TEXT NOT NULL,
    summary          TEXT,
    summary_through  UUID,
    created_at       TIMESTAMPTZ NOT NULL,
    updated_at       TIMESTAMPTZ NOT NULL,
    deleted_at       TIMESTAMPTZ
);
CREATE INDEX chat_sessions_owner ON chat_sessions (org_id, owner_id, updated_at);

CREATE TABLE chat_messages (
    id            UUID PRIMARY KEY,
    org_id        UUID NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    session_id    UUID NOT NULL REFERENCES chat_sessions (id) ON DELETE CASCADE,
    role          TEXT NOT NULL,
    content       TEXT NOT NULL,
    agent_id      UUID,
    execution_id  UUID,
    attachments   JSONB NOT NULL DEFAULT '[]',
    tokens_in     BIGINT NOT NULL DEFAULT 0,
    tokens_out    BIGINT NOT NULL DEFAULT 0,
    created_at    TIMESTAMPTZ NOT NULL
);
CREATE INDEX chat_messages_session ON chat_messages (org_id, session_id, id);
