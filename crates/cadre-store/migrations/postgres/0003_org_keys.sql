-- Per-organization data keys, wrapped by the instance's master key. Secrets
-- (integration credentials, model keys) are sealed with the newest version;
-- older versions stay to open what they sealed.
CREATE TABLE org_keys (
    org_id         UUID NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    version        BIGINT NOT NULL,
    wrapped_key    BYTEA NOT NULL,
    master_key_id  TEXT NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (org_id, version)
);
