-- Models an organization configured itself (SPEC §5): name → provider,
-- endpoint, sealed key, prices. The instance defaults cover the rest.
CREATE TABLE org_models (
    org_id              BLOB NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    name                TEXT NOT NULL,
    provider            TEXT NOT NULL,
    base_url            TEXT,
    api_key_sealed      TEXT,
    input_price_per_mtok  TEXT,
    output_price_per_mtok TEXT,
    context_window      INTEGER,
    updated_at          TEXT NOT NULL,
    PRIMARY KEY (org_id, name)
) STRICT;
