-- Every running `cadre serve` / `cadre worker` process registers here and
-- heartbeats, so others can tell which instances are alive (and rescue the
-- work of one that died).
CREATE TABLE instances (
    id            UUID PRIMARY KEY,
    hostname      TEXT NOT NULL,
    pid           BIGINT NOT NULL,
    version       TEXT NOT NULL,
    roles         TEXT NOT NULL,
    started_at    TIMESTAMPTZ NOT NULL,
    heartbeat_at  TIMESTAMPTZ NOT NULL
);

CREATE INDEX instances_heartbeat_at ON instances (heartbeat_at);
