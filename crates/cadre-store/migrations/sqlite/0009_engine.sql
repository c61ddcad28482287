-- The agent engine: agents and their immutable versions, the tasks they
-- work on (the minimal row; the work graph adds the rest), executions with
-- their checkpoints, the hash-chained trace, tool intents (the step
-- protocol's write-ahead record), approvals and long-term memory.
-- Nothing here is deleted with an agent or a task: those are soft-deleted.

CREATE TABLE agents (
    id               BLOB PRIMARY KEY,
    org_id           BLOB NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    name             TEXT NOT NULL,
    kind             TEXT NOT NULL,
    role             TEXT NOT NULL,
    description      TEXT NOT NULL,
    instructions     TEXT NOT NULL,
    model            TEXT NOT NULL,
    tools            TEXT NOT NULL,
    approval_policy  TEXT NOT NULL,
    skills           TEXT NOT NULL,
    limits           TEXT NOT NULL,
    title            TEXT,
    reports_to       BLOB,
    template_id      TEXT,
    status           TEXT NOT NULL,
    version          INTEGER NOT NULL,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL,
    deleted_at       TEXT
) STRICT;
CREATE INDEX agents_org ON agents (org_id, created_at);

CREATE TABLE agent_versions (
    agent_id    BLOB NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    version     INTEGER NOT NULL,
    org_id      BLOB NOT NULL,
    snapshot    TEXT NOT NULL,
    changed_by  BLOB,
    created_at  TEXT NOT NULL,
    PRIMARY KEY (agent_id, version)
) STRICT;

CREATE TABLE tasks (
    id             BLOB PRIMARY KEY,
    org_id         BLOB NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    project_id     BLOB NOT NULL REFERENCES projects (id),
    parent_id      BLOB REFERENCES tasks (id),
    title          TEXT NOT NULL,
    description    TEXT NOT NULL,
    status         TEXT NOT NULL,
    priority       INTEGER NOT NULL,
    assignee_type  TEXT,
    assignee_id    BLOB,
    author_type    TEXT NOT NULL,
    author_id      BLOB,
    version        INTEGER NOT NULL,
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL,
    deleted_at     TEXT
) STRICT;
CREATE INDEX tasks_project ON tasks (project_id, created_at);
CREATE INDEX tasks_parent ON tasks (parent_id);

CREATE TABLE task_outputs (
    id            BLOB PRIMARY KEY,
    org_id        BLOB NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    task_id       BLOB NOT NULL REFERENCES tasks (id),
    kind          TEXT NOT NULL,
    label         TEXT NOT NULL,
    content       TEXT NOT NULL,
    execution_id  BLOB,
    created_at    TEXT NOT NULL
) STRICT;
CREATE INDEX task_outputs_task ON task_outputs (task_id, created_at);

CREATE TABLE executions (
    id              BLOB PRIMARY KEY,
    org_id          BLOB NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    agent_id        BLOB NOT NULL REFERENCES agents (id),
    agent_version   INTEGER NOT NULL,
    task_id         BLOB NOT NULL REFERENCES tasks (id),
    parent_id       BLOB REFERENCES executions (id),
    trigger_kind    TEXT NOT NULL,
    triggered_by    BLOB,
    status          TEXT NOT NULL,
    -- A pause or cancel asked for, applied at the next step boundary.
    control         TEXT,
    -- The job advancing the execution now; others leave it alone while
    -- that job's lease is live.
    runner          BLOB,
    -- The answer to a pending request_human_input, taken by the engine.
    input           TEXT,
    steps           INTEGER NOT NULL,
    tokens_in       INTEGER NOT NULL,
    tokens_out      INTEGER NOT NULL,
    -- Billionths of a US dollar: exact sums in SQL on both backends.
    cost_nanos      INTEGER NOT NULL,
    models          TEXT NOT NULL,
    checkpoint      TEXT NOT NULL,
    trace_seq       INTEGER NOT NULL,
    trace_hash      TEXT NOT NULL,
    forked_from     BLOB,
    forked_at_step  INTEGER,
    error           TEXT,
    started_at      TEXT,
    finished_at     TEXT,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL
) STRICT;
CREATE INDEX executions_org ON executions (org_id, created_at);
CREATE INDEX executions_agent ON executions (agent_id, created_at);
CREATE INDEX executions_task ON executions (task_id);
CREATE INDEX executions_parent ON executions (parent_id);

-- The engine state after each step, for fork.
CREATE TABLE execution_checkpoints (
    execution_id  BLOB NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
    step          INTEGER NOT NULL,
    state         TEXT NOT NULL,
    PRIMARY KEY (execution_id, step)
) STRICT;

CREATE TABLE trace_events (
    execution_id  BLOB NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
    seq           INTEGER NOT NULL,
    org_id        BLOB NOT NULL,
    type          TEXT NOT NULL,
    at            TEXT NOT NULL,
    data          TEXT NOT NULL,
    prev_hash     TEXT NOT NULL,
    hash          TEXT NOT NULL,
    PRIMARY KEY (execution_id, seq)
) STRICT;

-- A tool call with outside effects is written here before it runs and
-- finished with its result after: on resume a result is replayed, and an
-- intent without one follows the tool's policy.
CREATE TABLE tool_intents (
    execution_id     BLOB NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
    call_id          TEXT NOT NULL,
    step             INTEGER NOT NULL,
    tool             TEXT NOT NULL,
    arguments        TEXT NOT NULL,
    idempotency_key  TEXT NOT NULL,
    result           TEXT,
    created_at       TEXT NOT NULL,
    finished_at      TEXT,
    PRIMARY KEY (execution_id, call_id)
) STRICT;

CREATE TABLE approvals (
    id              BLOB PRIMARY KEY,
    org_id          BLOB NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    execution_id    BLOB NOT NULL REFERENCES executions (id),
    agent_id        BLOB NOT NULL,
    call_id         TEXT NOT NULL,
    action          TEXT NOT NULL,
    description     TEXT NOT NULL,
    details         TEXT NOT NULL,
    args_hash       TEXT NOT NULL,
    risk_level      TEXT NOT NULL,
    status          TEXT NOT NULL,
    decided_by      BLOB,
    decided_at      TEXT,
    reason          TEXT,
    edited_details  TEXT,
    expires_at      TEXT NOT NULL,
    created_at      TEXT NOT NULL
) STRICT;
CREATE INDEX approvals_org ON approvals (org_id, status, created_at);
CREATE INDEX approvals_expiry ON approvals (status, expires_at);
CREATE UNIQUE INDEX approvals_call ON approvals (execution_id, call_id);

CREATE TABLE memories (
    org_id      BLOB NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    agent_id    BLOB NOT NULL,
    key         TEXT NOT NULL,
    value       TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    PRIMARY KEY (org_id, agent_id, key)
) STRICT;
