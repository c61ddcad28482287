-- Accounts, organizations and everything that decides who may do what.
-- Timestamps are RFC 3339 UTC text; JSON columns are text.

CREATE TABLE users (
    id             BLOB PRIMARY KEY,
    email          TEXT NOT NULL,          -- lower-cased on write
    name           TEXT NOT NULL,
    password_hash  TEXT NOT NULL,          -- Argon2id PHC string
    platform_role  TEXT NOT NULL,
    settings       TEXT NOT NULL,
    last_login_at  TEXT,
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL
) STRICT;
CREATE UNIQUE INDEX users_email ON users (email);

CREATE TABLE orgs (
    id          BLOB PRIMARY KEY,
    name        TEXT NOT NULL,
    slug        TEXT NOT NULL,
    plan        TEXT NOT NULL,
    settings    TEXT NOT NULL,
    status      TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
) STRICT;
CREATE UNIQUE INDEX orgs_slug ON orgs (slug);

CREATE TABLE memberships (
    org_id      BLOB NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    user_id     BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role        TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    PRIMARY KEY (org_id, user_id)
) STRICT;
CREATE INDEX memberships_user ON memberships (user_id);

CREATE TABLE invitations (
    id           BLOB PRIMARY KEY,
    org_id       BLOB NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    email        TEXT NOT NULL,
    role         TEXT NOT NULL,
    token_hash   TEXT NOT NULL,
    invited_by   BLOB NOT NULL,
    expires_at   TEXT NOT NULL,
    accepted_at  TEXT,
    created_at   TEXT NOT NULL
) STRICT;
CREATE UNIQUE INDEX invitations_token ON invitations (token_hash);
CREATE INDEX invitations_org ON invitations (org_id);

-- Refresh tokens rotate on every use; a reused one revokes its family.
CREATE TABLE refresh_tokens (
    id          BLOB PRIMARY KEY,
    user_id     BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    family_id   BLOB NOT NULL,
    token_hash  TEXT NOT NULL,
    expires_at  TEXT NOT NULL,
    used_at     TEXT,
    revoked_at  TEXT,
    created_at  TEXT NOT NULL
) STRICT;
CREATE UNIQUE INDEX refresh_tokens_hash ON refresh_tokens (token_hash);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_user ON refresh_tokens (user_id);

CREATE TABLE password_resets (
    id          BLOB PRIMARY KEY,
    user_id     BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash  TEXT NOT NULL,
    expires_at  TEXT NOT NULL,
    used_at     TEXT,
    created_at  TEXT NOT NULL
) STRICT;
CREATE UNIQUE INDEX password_resets_hash ON password_resets (token_hash);

CREATE TABLE api_keys (
    id                     BLOB PRIMARY KEY,
    org_id                 BLOB NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    created_by             BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name                   TEXT NOT NULL,
    key_hash               TEXT NOT NULL,
    key_prefix             TEXT NOT NULL,
    scopes                 TEXT NOT NULL,
    rate_limit_per_minute  INTEGER,
    expires_at             TEXT,
    last_used_at           TEXT,
    revoked_at             TEXT,
    created_at             TEXT NOT NULL
) STRICT;
CREATE UNIQUE INDEX api_keys_hash ON api_keys (key_hash);
CREATE INDEX api_keys_org ON api_keys (org_id);

CREATE TABLE projects (
    id               BLOB PRIMARY KEY,
    org_id           BLOB NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    name             TEXT NOT NULL,
    description      TEXT NOT NULL,
    workflow_states  TEXT NOT NULL,
    auto_run         INTEGER NOT NULL,
    require_review   INTEGER NOT NULL,
    is_default       INTEGER NOT NULL,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL,
    deleted_at       TEXT
) STRICT;
CREATE INDEX projects_org ON projects (org_id, created_at);

-- Append-only, hash-chained per organization. No foreign key: the log of an
-- organization outlives it. Platform events (sign-ins) use the nil org id.
CREATE TABLE audit_log (
    org_id         BLOB NOT NULL,
    seq            INTEGER NOT NULL,
    id             BLOB NOT NULL,
    at             TEXT NOT NULL,
    actor_type     TEXT NOT NULL,
    actor_id       TEXT,
    action         TEXT NOT NULL,
    resource_type  TEXT,
    resource_id    TEXT,
    ip             TEXT,
    user_agent     TEXT,
    details        TEXT NOT NULL,
    prev_hash      TEXT NOT NULL,
    hash           TEXT NOT NULL,
    PRIMARY KEY (org_id, seq)
) STRICT;
CREATE INDEX audit_log_at ON audit_log (org_id, at);
