-- The durable job queue. A job is `available` (or `failed`, waiting to be
-- retried at run_at) until a worker claims it: `running` with a lease and an
-- epoch that fences every later write. It ends `completed`, `dead` (out of
-- attempts) or `cancelled`.
CREATE TABLE jobs (
    id               UUID PRIMARY KEY,
    queue            TEXT NOT NULL,
    kind             TEXT NOT NULL,
    payload          JSONB NOT NULL,
    org_id           UUID,
    priority         BIGINT NOT NULL,
    state            TEXT NOT NULL,
    run_at           TIMESTAMPTZ NOT NULL,
    attempts         BIGINT NOT NULL,
    max_attempts     BIGINT NOT NULL,
    backoff_base_ms  BIGINT NOT NULL,
    timeout_secs     BIGINT NOT NULL,
    unique_key       TEXT,
    lease_until      TIMESTAMPTZ,
    lease_epoch      BIGINT NOT NULL,
    instance_id      UUID,
    last_error       TEXT,
    created_at       TIMESTAMPTZ NOT NULL,
    updated_at       TIMESTAMPTZ NOT NULL,
    finished_at      TIMESTAMPTZ
);
CREATE INDEX jobs_ready ON jobs (queue, state, run_at);
CREATE INDEX jobs_lease ON jobs (state, lease_until);
-- At most one pending or running job per unique key.
CREATE UNIQUE INDEX jobs_unique_pending ON jobs (queue, unique_key)
    WHERE unique_key IS NOT NULL AND state IN ('available', 'running', 'failed');
