-- Recurring jobs: a cron pattern (UTC) that enqueues a job at each tick.
-- Instances race to advance next_run_at with compare-and-set, so each tick
-- fires once however many instances run.
CREATE TABLE schedules (
    id           UUID PRIMARY KEY,
    name         TEXT NOT NULL,
    cron         TEXT NOT NULL,
    queue        TEXT NOT NULL,
    kind         TEXT NOT NULL,
    payload      JSONB NOT NULL,
    org_id       UUID,
    catch_up     TEXT NOT NULL,
    enabled      BOOLEAN NOT NULL,
    next_run_at  TIMESTAMPTZ NOT NULL,
    last_run_at  TIMESTAMPTZ,
    created_at   TIMESTAMPTZ NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL
);
CREATE UNIQUE INDEX schedules_name ON schedules (name);
CREATE INDEX schedules_due ON schedules (enabled, next_run_at);
