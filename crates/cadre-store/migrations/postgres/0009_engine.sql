-- The agent engine: agents and their immutable versions, the tasks they
-- work on (the minimal row; the work graph adds the rest), executions with
-- their checkpoints, the hash-chained trace, tool intents (the step
-- protocol's write-ahead record), approvals and long-term memory.
-- Nothing here is deleted with an agent or a task: those are soft-deleted.

CREATE TABLE agents (
    id               UUID PRIMARY KEY,
    org_id           UUID NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    name             TEXT NOT NULL,
    kind             TEXT NOT NULL,
    role             TEXT NOT NULL,
    description      TEXT NOT NULL,
    instructions     TEXT NOT NULL,
    model            TEXT NOT NULL,
    tools            JSONB NOT NULL,
    approval_policy  JSONB NOT NULL,
    skills           JSONB NOT NULL,
    limits           JSONB NOT NULL,
    title            TEXT,
    reports_to       UUID,
    template_id      TEXT,
    status           TEXT NOT NULL,
    version          BIGINT NOT NULL,
    created_at       TIMESTAMPTZ NOT NULL,
    updated_at       TIMESTAMPTZ NOT NULL,
    deleted_at       TIMESTAMPTZ
);
CREATE INDEX agents_org ON agents (org_id, created_at);

CREATE TABLE agent_versions (
    agent_id    UUID NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    version     BIGINT NOT NULL,
    org_id      UUID NOT NULL,
    snapshot    JSONB NOT NULL,
    changed_by  UUID,
    created_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (agent_id, version)
);

CREATE TABLE tasks (
    id             UUID PRIMARY KEY,
    org_id         UUID NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    project_id     UUID NOT NULL REFERENCES projects (id),
    parent_id      UUID REFERENCES tasks (id),
    title          TEXT NOT NULL,
    description    TEXT NOT NULL,
    status         TEXT NOT NULL,
    priority       BIGINT NOT NULL,
    assignee_type  TEXT,
    assignee_id    UUID,
    author_type    TEXT NOT NULL,
    author_id      UUID,
    version        BIGINT NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL,
    updated_at     TIMESTAMPTZ NOT NULL,
    deleted_at     TIMESTAMPTZ
);
CREATE INDEX tasks_project ON tasks (project_id, created_at);
CREATE INDEX tasks_parent ON tasks (parent_id);

CREATE TABLE task_outputs (
    id            UUID PRIMARY KEY,
    org_id        UUID NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    task_id       UUID NOT NULL REFERENCES tasks (id),
    kind          TEXT NOT NULL,
    label         TEXT NOT NULL,
    content       JSONB NOT NULL,
    execution_id  UUID,
    created_at    TIMESTAMPTZ NOT NULL
);
CREATE INDEX task_outputs_task ON task_outputs (task_id, created_at);

CREATE TABLE executions (
    id              UUID PRIMARY KEY,
    org_id          UUID NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    agent_id        UUID NOT NULL REFERENCES agents (id),
    agent_version   BIGINT NOT NULL,
    task_id         UUID NOT NULL REFERENCES tasks (id),
    parent_id       UUID REFERENCES executions (id),
    trigger_kind    TEXT NOT NULL,
    triggered_by    UUID,
    status          TEXT NOT NULL,
    -- A pause or cancel asked for, applied at the next step boundary.
    control         TEXT,
    -- The job advancing the execution now; others leave it alone while
    -- that job's lease is live.
    runner          UUID,
    -- The answer to a pending request_human_input, taken by the engine.
    input           JSONB,
    steps           BIGINT NOT NULL,
    tokens_in       BIGINT NOT NULL,
    tokens_out      BIGINT NOT NULL,
    -- Billionths of a US dollar: exact sums in SQL on both backends.
    cost_nanos      BIGINT NOT NULL,
    models          JSONB NOT NULL,
    checkpoint      JSONB NOT NULL,
    trace_seq       BIGINT NOT NULL,
    trace_hash      TEXT NOT NULL,
    forked_from     UUID,
    forked_at_step  BIGINT,
    error           TEXT,
    started_at      TIMESTAMPTZ,
    finished_at     TIMESTAMPTZ,
    created_at      TIMESTAMPTZ NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL
);
CREATE INDEX executions_org ON executions (org_id, created_at);
CREATE INDEX executions_agent ON executions (agent_id, created_at);
CREATE INDEX executions_task ON executions (task_id);
CREATE INDEX executions_parent ON executions (parent_id);

-- The engine state after each step, for fork.
CREATE TABLE execution_checkpoints (
    execution_id  UUID NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
    step          BIGINT NOT NULL,
    state         JSONB NOT NULL,
    PRIMARY KEY (execution_id, step)
);

CREATE TABLE trace_events (
    execution_id  UUID NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
    seq           BIGINT NOT NULL,
    org_id        UUID NOT NULL,
    type          TEXT NOT NULL,
    at            TIMESTAMPTZ NOT NULL,
    data          JSONB NOT NULL,
    prev_hash     TEXT NOT NULL,
    hash          TEXT NOT NULL,
    PRIMARY KEY (execution_id, seq)
);

-- A tool call with outside effects is written here before it runs and
-- finished with its result after: on resume a result is replayed, and an
-- intent without one follows the tool's policy.
CREATE TABLE tool_intents (
    execution_id     UUID NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
    call_id          TEXT NOT NULL,
    step             BIGINT NOT NULL,
    tool             TEXT NOT NULL,
    arguments        JSONB NOT NULL,
    idempotency_key  TEXT NOT NULL,
    result           JSONB,
    created_at       TIMESTAMPTZ NOT NULL,
    finished_at      TIMESTAMPTZ,
    PRIMARY KEY (execution_id, call_id)
);

CREATE TABLE approvals (
    id              UUID PRIMARY KEY,
    org_id          UUID NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    execution_id    UUID NOT NULL REFERENCES executions (id),
    agent_id        UUID NOT NULL,
    call_id         TEXT NOT NULL,
    action          TEXT NOT NULL,
    description     TEXT NOT NULL,
    details         JSONB NOT NULL,
    args_hash       TEXT NOT NULL,
    risk_level      TEXT NOT NULL,
    status          TEXT NOT NULL,
    decided_by      UUID,
    decided_at      TIMESTAMPTZ,
    reason          TEXT,
    edited_details  JSONB,
    expires_at      TIMESTAMPTZ NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL
);
CREATE INDEX approvals_org ON approvals (org_id, status, created_at);
CREATE INDEX approvals_expiry ON approvals (status, expires_at);
CREATE UNIQUE INDEX approvals_call ON approvals (execution_id, call_id);

CREATE TABLE memories (
    org_id      UUID NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    agent_id    UUID NOT NULL,
    key         TEXT NOT NULL,
    value       TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (org_id, agent_id, key)
);
