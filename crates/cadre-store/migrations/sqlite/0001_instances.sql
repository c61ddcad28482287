-- Every running `cadre serve` / `cadre worker` process registers here and
-- heartbeats, so others can tell which instances are alive (and rescue the
-- work of one that died).
CREATE TABLE instances (
    id            BLOB PRIMARY KEY,
    hostname      TEXT NOT NULL,
    pid           INTEGER NOT NULL,
    version       TEXT NOT NULL,
    roles         TEXT NOT NULL,
    started_at    TEXT NOT NULL,
    heartbeat_at  TEXT NOT NULL
) STRICT;

CREATE INDEX instances_heartbeat_at ON instances (heartbeat_at);
