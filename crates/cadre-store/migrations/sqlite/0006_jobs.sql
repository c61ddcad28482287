-- The durable job queue. A job is `available` (or `failed`, waiting to be
-- retried at run_at) until a worker claims it: `running` with a lease and an
-- epoch that fences every later write. It ends `completed`, `dead` (out of
-- attempts) or `cancelled`.
CREATE TABLE jobs (
    id               BLOB PRIMARY KEY,
    queue            TEXT NOT NULL,
    kind             TEXT NOT NULL,
    payload          TEXT NOT NULL,
    org_id           BLOB,
    priority         INTEGER NOT NULL,
    state            TEXT NOT NULL,
    run_at           TEXT NOT NULL,
    attempts         INTEGER NOT NULL,
    max_attempts     INTEGER NOT NULL,
    backoff_base_ms  INTEGER NOT NULL,
    timeout_secs     INTEGER NOT NULL,
    unique_key       TEXT,
    lease_until      TEXT,
    lease_epoch      INTEGER NOT NULL,
    instance_id      BLOB,
    last_error       TEXT,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL,
    finished_at      TEXT
) STRICT;
CREATE INDEX jobs_ready ON jobs (queue, state, run_at);
CREATE INDEX jobs_lease ON jobs (state, lease_until);
-- At most one pending or running job per unique key.
CREATE UNIQUE INDEX jobs_unique_pending ON jobs (queue, unique_key)
    WHERE unique_key IS NOT NULL AND state IN ('available', 'running', 'failed');
