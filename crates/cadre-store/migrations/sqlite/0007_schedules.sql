-- Recurring jobs: a cron pattern (UTC) that enqueues a job at each tick.
-- Instances race to advance next_run_at with compare-and-set, so each tick
-- fires once however many instances run.
CREATE TABLE schedules (
    id           BLOB PRIMARY KEY,
    name         TEXT NOT NULL,
    cron         TEXT NOT NULL,
    queue        TEXT NOT NULL,
    kind         TEXT NOT NULL,
    payload      TEXT NOT NULL,
    org_id       BLOB,
    catch_up     TEXT NOT NULL,
    enabled      INTEGER NOT NULL,
    next_run_at  TEXT NOT NULL,
    last_run_at  TEXT,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL
) STRICT;
CREATE UNIQUE INDEX schedules_name ON schedules (name);
CREATE INDEX schedules_due ON schedules (enabled, next_run_at);
